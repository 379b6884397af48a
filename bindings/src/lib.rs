//! edge4d-ffi: the C ABI of edge4d. This first slice exposes the version and the
//! runtime's adapter selection; models and streams come with the streaming work.
//! No call panics across the boundary: every entry point catches unwinding.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Status codes returned by every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge4dStatus {
    Ok = 0,
    Error = 1,
    NullArgument = 2,
    Panic = 3,
}

/// Opaque runtime handle.
pub struct Edge4dRuntime {
    device: edge4d_runtime::Device,
}

/// The library version as a static NUL-terminated string (owned by the library).
#[no_mangle]
pub extern "C" fn edge4d_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The last error message on this thread (owned by the library, valid until the
/// next edge4d call on this thread).
#[no_mangle]
pub extern "C" fn edge4d_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Opens a runtime on the backend named by `EDGE4D_BACKEND` (default auto) and
/// writes its handle to `*out`. Destroy it with `edge4d_runtime_destroy`.
///
/// # Safety
/// `out` must be null or point to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn edge4d_runtime_create(out: *mut *mut Edge4dRuntime) -> Edge4dStatus {
    if out.is_null() {
        set_error("edge4d_runtime_create: out is null");
        return Edge4dStatus::NullArgument;
    }
    match std::panic::catch_unwind(edge4d_runtime::Device::from_env) {
        Ok(Ok(device)) => {
            // SAFETY: checked non-null above; the caller guarantees it is writable.
            unsafe { *out = Box::into_raw(Box::new(Edge4dRuntime { device })) };
            Edge4dStatus::Ok
        }
        Ok(Err(e)) => {
            set_error(&e.to_string());
            Edge4dStatus::Error
        }
        Err(_) => {
            set_error("edge4d_runtime_create: internal panic");
            Edge4dStatus::Panic
        }
    }
}

/// Destroys a runtime. A null handle is ignored.
///
/// # Safety
/// `rt` must be null or a handle from `edge4d_runtime_create`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn edge4d_runtime_destroy(rt: *mut Edge4dRuntime) {
    if !rt.is_null() {
        // SAFETY: the caller passes a handle created by Box::into_raw.
        drop(unsafe { Box::from_raw(rt) });
    }
}

/// Writes the adapter's description, NUL-terminated, into `buf` of `len` bytes.
///
/// # Safety
/// `rt` must be a live handle; `buf` must be null or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn edge4d_runtime_adapter(
    rt: *const Edge4dRuntime,
    buf: *mut c_char,
    len: usize,
) -> Edge4dStatus {
    if rt.is_null() || buf.is_null() {
        set_error("edge4d_runtime_adapter: null argument");
        return Edge4dStatus::NullArgument;
    }
    // SAFETY: checked non-null; the caller guarantees a live handle.
    let text = unsafe { &*rt }.device.adapter().to_string();
    let bytes = text.as_bytes();
    if len <= bytes.len() {
        set_error(&format!(
            "edge4d_runtime_adapter: buffer of {len} bytes is too small for {} bytes",
            bytes.len() + 1
        ));
        return Edge4dStatus::Error;
    }
    // SAFETY: len > bytes.len(), so the copy and the terminator fit in `buf`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    Edge4dStatus::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn null_arguments_are_errors_with_messages() {
        // SAFETY: null is explicitly allowed.
        let status = unsafe { edge4d_runtime_create(std::ptr::null_mut()) };
        assert_eq!(status, Edge4dStatus::NullArgument);
        // SAFETY: the message pointer is valid until the next call on this thread.
        let msg = unsafe { CStr::from_ptr(edge4d_last_error_message()) }
            .to_str()
            .unwrap();
        assert!(msg.contains("out is null"), "{msg}");
    }

    #[test]
    fn runtime_opens_and_reports_its_adapter() {
        let mut rt = std::ptr::null_mut();
        // SAFETY: rt is a valid out-pointer.
        assert_eq!(unsafe { edge4d_runtime_create(&mut rt) }, Edge4dStatus::Ok);
        let mut buf = [0 as c_char; 256];
        // SAFETY: rt is live and buf holds 256 bytes.
        assert_eq!(
            unsafe { edge4d_runtime_adapter(rt, buf.as_mut_ptr(), buf.len()) },
            Edge4dStatus::Ok
        );
        let mut tiny = [0 as c_char; 2];
        // SAFETY: as above, with a buffer too small on purpose.
        assert_eq!(
            unsafe { edge4d_runtime_adapter(rt, tiny.as_mut_ptr(), tiny.len()) },
            Edge4dStatus::Error
        );
        // SAFETY: buf was NUL-terminated by the call.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert!(!name.is_empty());
        // SAFETY: rt came from edge4d_runtime_create.
        unsafe { edge4d_runtime_destroy(rt) };
        // SAFETY: the version string is static.
        assert_eq!(
            unsafe { CStr::from_ptr(edge4d_version()) }
                .to_str()
                .unwrap(),
            env!("CARGO_PKG_VERSION")
        );
    }
}
