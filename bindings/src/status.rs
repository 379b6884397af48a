//! Status codes, the thread-local last error message, and the guard every entry point
//! runs in: it turns errors into codes and catches panics so none crosses the boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Every call returns one of these; on anything but `EDGE4D_OK`,
/// `edge4d_last_error_message()` says what went wrong.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge4dStatus {
    /// Success.
    EDGE4D_OK = 0,
    /// Any other failure (device, model, data).
    EDGE4D_ERROR = 1,
    /// A required pointer argument was null.
    EDGE4D_NULL_ARGUMENT = 2,
    /// An internal panic was caught; the handle involved should be destroyed.
    EDGE4D_PANIC = 3,
    /// An argument is out of range or of the wrong size.
    EDGE4D_INVALID_ARGUMENT = 4,
    /// A file could not be read or written, or is not what it should be.
    EDGE4D_IO = 5,
    /// No prediction yet: the window is not full.
    EDGE4D_NOT_READY = 6,
    /// The stream was closed with `edge4d_stream_close`.
    EDGE4D_CLOSED = 7,
    /// Another thread is using this stream right now.
    EDGE4D_BUSY = 8,
}

/// An error raised inside the library: a code and a message.
pub(crate) struct Failure(pub Edge4dStatus, pub String);

impl From<edge4d_runtime::Error> for Failure {
    fn from(e: edge4d_runtime::Error) -> Self {
        use edge4d_runtime::Error as E;
        let code = match &e {
            E::TensorFile { .. } | E::Config { .. } => Edge4dStatus::EDGE4D_IO,
            E::Shape { .. }
            | E::InvalidArgument { .. }
            | E::NonFinite { .. }
            | E::TooLarge { .. }
            | E::Empty { .. } => Edge4dStatus::EDGE4D_INVALID_ARGUMENT,
            _ => Edge4dStatus::EDGE4D_ERROR,
        };
        Failure(code, e.to_string())
    }
}

pub(crate) fn fail<T>(code: Edge4dStatus, msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(code, msg.into()))
}

pub(crate) fn set_error(msg: &str) {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Runs `f`, naming `call` in any message; errors and panics become status codes.
pub(crate) fn guard(call: &str, f: impl FnOnce() -> Result<(), Failure>) -> Edge4dStatus {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => Edge4dStatus::EDGE4D_OK,
        Ok(Err(Failure(code, msg))) => {
            set_error(&format!("{call}: {msg}"));
            code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_error(&format!("{call}: internal panic: {what}"));
            Edge4dStatus::EDGE4D_PANIC
        }
    }
}

/// A non-null pointer, or a NULL_ARGUMENT failure naming it.
pub(crate) fn non_null<T>(p: *const T, name: &str) -> Result<*const T, Failure> {
    if p.is_null() {
        fail(
            Edge4dStatus::EDGE4D_NULL_ARGUMENT,
            format!("{name} is null"),
        )
    } else {
        Ok(p)
    }
}

/// A UTF-8 path from a C string.
///
/// # Safety
/// `p` must be null or a NUL-terminated string.
pub(crate) unsafe fn path_arg(p: *const c_char, name: &str) -> Result<std::path::PathBuf, Failure> {
    non_null(p, name)?;
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    match s.to_str() {
        Ok(s) if !s.is_empty() => Ok(s.into()),
        _ => fail(
            Edge4dStatus::EDGE4D_INVALID_ARGUMENT,
            format!("{name} must be a non-empty UTF-8 path"),
        ),
    }
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
