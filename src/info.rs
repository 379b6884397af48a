//! `edge4d info`: the backends edge4d can use, their limits, and the one selected.

use edge4d_runtime::{BackendChoice, Device};

pub fn run(backend: &str, threads: Option<u16>) -> Result<(), Box<dyn std::error::Error>> {
    let choice = BackendChoice::parse(backend)?;
    let adapters = Device::enumerate(choice);
    if adapters.is_empty() {
        println!("no adapters found for backend {}", backend);
    }
    for (summary, limits) in adapters {
        let note = if summary.is_cpu && summary.backend != "cpu" {
            "  [software rasteriser: used only when named]"
        } else {
            ""
        };
        println!("{summary}{note}");
        println!(
                "  storage buffers/stage {}, max binding {} MiB, workgroup memory {} KiB, invocations/workgroup {}",
                limits.max_storage_buffers_per_shader_stage,
                limits.max_storage_buffer_binding_size >> 20,
                limits.max_compute_workgroup_storage_size >> 10,
                limits.max_compute_invocations_per_workgroup
            );
    }
    match crate::open(backend, threads) {
        Ok(dev) => println!("selected: {}", dev.adapter()),
        Err(e) => println!("selected: none\n{e}"),
    }
    Ok(())
}
