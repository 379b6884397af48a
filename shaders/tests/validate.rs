//! Parses and validates every kernel with naga, and checks that each stays within
//! WebGPU's default limits and uses no optional feature.

use std::path::Path;

use edge4d_shaders::{Shader, ALL};

/// WebGPU default limits every kernel must respect.
const MAX_STORAGE_BUFFERS_PER_STAGE: usize = 8;
const MAX_WORKGROUP_STORAGE_BYTES: u32 = 16 * 1024;
const MAX_INVOCATIONS_PER_WORKGROUP: u32 = 256;

/// "file:line" for a line of the combined source (preludes first).
fn place(shader: &Shader, line: u32) -> String {
    let mut before = 0;
    for &(path, n) in shader.preludes {
        if (line as usize) <= before + n {
            return format!("{path}:{}", line as usize - before);
        }
        before += n;
    }
    format!("{}:{}", shader.path, line as usize - before)
}

fn validate(shader: &Shader) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(shader.source).map_err(|e| {
        let loc = e.location(shader.source);
        let (line, col) = loc
            .map(|l| (l.line_number, l.line_position))
            .unwrap_or((0, 0));
        format!(
            "{}:{}: parse error: {}",
            place(shader, line),
            col,
            e.emit_to_string(shader.source)
        )
    })?;
    // Validate with no optional capabilities: f16, subgroups and float atomics are refused.
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    );
    let info = validator.validate(&module).map_err(|e| {
        let line = e
            .spans()
            .next()
            .and_then(|(span, _)| span.location(shader.source).into())
            .map(|l: naga::SourceLocation| l.line_number)
            .unwrap_or(0);
        format!(
            "{}: validation error: {}",
            place(shader, line),
            e.emit_to_string(shader.source)
        )
    })?;
    Ok((module, info))
}

#[test]
fn every_kernel_parses_and_validates() {
    let errors: Vec<String> = ALL.iter().filter_map(|s| validate(s).err()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[test]
fn every_kernel_fits_webgpu_default_limits() {
    for shader in ALL {
        let (module, info) = validate(shader).unwrap();
        let layouter = {
            let mut l = naga::proc::Layouter::default();
            l.update(module.to_ctx()).unwrap();
            l
        };
        for (i, ep) in module.entry_points.iter().enumerate() {
            let [x, y, z] = ep.workgroup_size;
            assert!(
                x * y * z <= MAX_INVOCATIONS_PER_WORKGROUP,
                "{}: entry {} has {} invocations per workgroup",
                shader.path,
                ep.name,
                x * y * z
            );
            // Count what this entry point statically uses.
            let ep_info = info.get_entry_point(i);
            let mut storage_buffers = 0;
            let mut workgroup_bytes = 0;
            for (handle, var) in module.global_variables.iter() {
                if ep_info[handle].is_empty() {
                    continue;
                }
                match var.space {
                    naga::AddressSpace::Storage { .. } => storage_buffers += 1,
                    naga::AddressSpace::WorkGroup => workgroup_bytes += layouter[var.ty].size,
                    _ => {}
                }
            }
            assert!(
                storage_buffers <= MAX_STORAGE_BUFFERS_PER_STAGE,
                "{}: entry {} uses {} storage buffers",
                shader.path,
                ep.name,
                storage_buffers
            );
            assert!(
                workgroup_bytes <= MAX_WORKGROUP_STORAGE_BYTES,
                "{}: entry {} uses {} bytes of workgroup memory",
                shader.path,
                ep.name,
                workgroup_bytes
            );
        }
        assert!(
            !shader.source.contains("atomic<f32>"),
            "{}: float atomics are not portable",
            shader.path
        );
        assert!(
            !shader.source.contains("enable "),
            "{}: optional WGSL extensions are not allowed",
            shader.path
        );
    }
}

#[test]
fn every_wgsl_file_is_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("wgsl");
    let mut on_disk = Vec::new();
    for family in std::fs::read_dir(&root).unwrap() {
        let family = family.unwrap().path();
        for file in std::fs::read_dir(&family).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "wgsl") {
                on_disk.push(format!(
                    "{}/{}",
                    family.file_name().unwrap().to_string_lossy(),
                    file.file_stem().unwrap().to_string_lossy()
                ));
            }
        }
    }
    on_disk.sort();
    let mut registered: Vec<String> = ALL
        .iter()
        .map(|s| format!("{}/{}", s.family, s.name))
        .chain([
            edge4d_shaders::dense::MATMUL_COMMON.to_string(),
            edge4d_shaders::activation::GELU_MATH.to_string(),
        ])
        .collect();
    registered.sort();
    assert_eq!(
        on_disk, registered,
        "every .wgsl file must be listed in edge4d_shaders::ALL"
    );
}

#[test]
fn prelude_errors_name_the_right_file_and_line() {
    let s = edge4d_shaders::dense::MATMUL_NAIVE;
    let [(gelu, n_gelu), (common, n_common)] = s.preludes else {
        panic!("matmul_naive has two preludes, got {:?}", s.preludes)
    };
    assert_eq!(place(&s, 1), format!("{gelu}:1"));
    assert_eq!(place(&s, *n_gelu as u32 + 2), format!("{common}:2"));
    let body = n_gelu + n_common;
    assert_eq!(place(&s, body as u32 + 3), format!("{}:3", s.path));
    assert!(s.source.starts_with("// Prepended"));
    let first_body_line = s.source.lines().nth(body).unwrap();
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("wgsl/dense/matmul_naive.wgsl"),
    )
    .unwrap();
    assert_eq!(first_body_line, file.lines().next().unwrap());
}
