use edge4d_runtime::{ops, BackendChoice, Error};

use crate::common::{dev, down, up};

#[test]
fn backend_names_parse_and_unknown_names_are_errors() {
    assert_eq!(
        BackendChoice::parse("Vulkan").unwrap(),
        BackendChoice::Vulkan
    );
    assert_eq!(BackendChoice::parse("gl").unwrap(), BackendChoice::Gl);
    assert_eq!(BackendChoice::parse("").unwrap(), BackendChoice::Auto);
    assert_eq!(BackendChoice::parse(" CPU ").unwrap(), BackendChoice::Cpu);
    let err = BackendChoice::parse("cuda").unwrap_err();
    assert!(
        err.to_string().contains("cuda")
            && err.to_string().contains("vulkan")
            && err.to_string().contains("cpu"),
        "{err}"
    );
}

#[test]
fn upload_refuses_bad_input_with_named_errors() {
    let d = dev();
    assert!(matches!(
        d.upload(&[1.0, f32::NAN], &[2]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        d.upload(&[1.0, 2.0, 3.0], &[2, 2]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(d.upload(&[], &[0, 3]), Err(Error::Empty { .. })));
    let x = up(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert!(matches!(x.reshape(&[3]), Err(Error::Shape { .. })));
}

#[test]
fn pipelines_are_compiled_once_and_buffers_are_reused_across_steps() {
    // A device of its own: the shared one is busy with tests on other threads.
    let d = &edge4d_runtime::Device::from_env().unwrap();
    let x = d.upload(&[1.0, -2.0, 3.0], &[3]).unwrap();
    let step = |x: &edge4d_runtime::Tensor| {
        let y = d.run(|s| ops::activation::relu(s, x)).unwrap();
        d.read(&y).unwrap()
    };
    assert_eq!(step(&x), vec![1.0, 0.0, 3.0]);
    let pipelines = d.compiled_pipelines();
    let buffers = d.buffers_created();
    let bind_groups = d.cached_bind_groups();
    for _ in 0..5 {
        step(&x);
    }
    assert_eq!(
        d.cached_bind_groups(),
        bind_groups,
        "a steady loop creates no new bind groups"
    );
    assert_eq!(
        d.compiled_pipelines(),
        pipelines,
        "no pipeline is compiled twice"
    );
    assert_eq!(
        d.buffers_created(),
        buffers,
        "a steady loop allocates no new buffers"
    );
}

#[test]
fn one_step_records_many_dispatches_and_submits_once() {
    let d = dev();
    let x = up(&[0.5, -1.5, 2.0, -0.25], &[4]);
    let mut s = d.step();
    let a = ops::activation::relu(&mut s, &x).unwrap();
    let b = ops::elementwise::scale(&mut s, &a, 2.0).unwrap();
    let c = ops::elementwise::add(&mut s, &b, &x).unwrap();
    assert_eq!(s.len(), 3);
    s.submit().unwrap();
    assert_eq!(down(&c), vec![1.5, -1.5, 6.0, -0.25]);
}

#[test]
fn the_suite_runs_on_the_backend_it_was_asked_for() {
    if let Ok(want) = std::env::var("EDGE4D_BACKEND") {
        if want != "auto" && !want.is_empty() {
            assert_eq!(dev().adapter().backend, want, "adapter {}", dev().adapter());
        }
    }
}

/// An op whose output exceeds one binding fails its step with the shape named, before
/// anything runs or is allocated (the CPU backend would otherwise fill host memory).
#[test]
fn an_output_above_the_binding_limit_fails_the_step_by_name() {
    let n = 6000; // 6000 x 6000 floats = 144 MB, above WebGPU's 128 MiB default
    let a = dev().upload(&vec![1.0; n], &[n, 1]).unwrap();
    let b = dev().upload(&vec![1.0; n], &[1, n]).unwrap();
    let err = dev()
        .run(|s| ops::matmul::matmul(s, &a, &b, None, false, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[6000, 6000]") && err.contains("binding limit"),
        "{err}"
    );
}

/// Within one recorded step, a buffer whose tensors are all dropped is written again by
/// a later op instead of a new one being taken: ten chained ops peak at a few
/// tensors, and tensors still held keep their values.
#[test]
fn a_step_reuses_the_buffers_of_tensors_nobody_holds() {
    // A device of its own, so that no other test's buffers count in the peak.
    let d = &edge4d_runtime::Device::from_env().unwrap();
    let n = 1 << 16;
    let tensor_bytes = 4 * n as u64;
    let x = d.upload(&vec![1.0; n], &[n]).unwrap();
    let before = d.memory_in_use().0;
    d.reset_peak_bytes();
    let (y, kept) = d
        .run(|s| {
            let mut t = ops::elementwise::scale(s, &x, 2.0)?;
            let mut kept = None;
            for i in 0..9 {
                t = ops::elementwise::scale(s, &t, 2.0)?;
                if i == 3 {
                    kept = Some(t.clone());
                }
            }
            Ok((t, kept.unwrap()))
        })
        .unwrap();
    let peak = d.memory_in_use().1 - before;
    assert_eq!(d.read(&y).unwrap(), vec![1024.0; n]);
    assert_eq!(d.read(&kept).unwrap(), vec![32.0; n]);
    assert_eq!(d.read(&x).unwrap(), vec![1.0; n]);
    assert!(
        peak < 5 * tensor_bytes,
        "ten chained ops of {tensor_bytes} bytes each peaked at {peak} bytes"
    );
}
