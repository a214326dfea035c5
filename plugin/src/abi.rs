//! The proxy-wasm ABI 0.2.1 hostcalls Sluice makes (module `env`), as safe functions that never
//! trap: a status other than the ones a caller handles reads as "nothing" (`None`, an empty map,
//! an ignored write). The SDK panics on such statuses instead; a panic is an abort, and an aborted
//! VM fails every later request on the worker.
//!
//! A value the host returns lives in memory the host allocated through
//! `proxy_on_memory_allocate` (the global allocator, `exports`), so it is taken over as a `Vec`
//! without a copy.
use std::ptr::{null, null_mut};

/// The host's answer to a hostcall (`WasmResult` in Envoy).
type Status = u32;
const OK: Status = 0;
const NOT_FOUND: Status = 1;
const BAD_ARGUMENT: Status = 2;
const CAS_MISMATCH: Status = 8;
const INTERNAL_FAILURE: Status = 10;

/// `proxy_log` levels.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// The header maps Sluice reads or writes.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum HeaderMap {
    Request = 0,
    Response = 2,
    /// Of an HTTP call's response.
    CallResponse = 6,
}

/// The buffers Sluice reads.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// Stat kinds of `proxy_define_metric`.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// Why a shared-data write failed.
pub enum SetSharedError {
    CasMismatch,
    Other,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: LogLevel, data: *const u8, size: usize) -> Status;
    fn proxy_get_current_time_nanoseconds(nanos: *mut u64) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_get_buffer_bytes(
        buffer: Buffer,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_get_header_map_pairs(map: HeaderMap, data: *mut *mut u8, size: *mut usize) -> Status;
    fn proxy_get_header_map_value(
        map: HeaderMap,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_replace_header_map_value(
        map: HeaderMap,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_add_header_map_value(
        map: HeaderMap,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_remove_header_map_value(map: HeaderMap, key: *const u8, key_size: usize) -> Status;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
    fn proxy_define_metric(
        kind: MetricType,
        name: *const u8,
        name_size: usize,
        id: *mut u32,
    ) -> Status;
    fn proxy_increment_metric(id: u32, delta: i64) -> Status;
    fn proxy_record_metric(id: u32, value: u64) -> Status;
    #[allow(clippy::too_many_arguments)] // the ABI's signature
    fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> Status;
    fn proxy_set_effective_context(context_id: u32) -> Status;
}

/// Takes over a value the host returned: `None` when it returned no memory.
///
/// # Safety
/// `data` is null, or `size` bytes the host allocated through `proxy_on_memory_allocate` (align
/// 1, exactly `size` bytes) and handed over with the hostcall's result.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    // SAFETY: by this function's contract, the memory is ours, of this layout.
    (!data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Runs a hostcall that returns a value in host-allocated memory: `Ok(None)` for a null pointer.
fn returned(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> Status,
) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        // SAFETY: on success the host wrote either nothing (null) or memory it allocated through
        // `proxy_on_memory_allocate` for us, `size` bytes.
        OK => Ok(unsafe { take(data, size) }),
        status => Err(status),
    }
}

pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the host reads `len` bytes at the pointer, a live `&str`.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// The proxy's clock, nanoseconds since the Unix epoch.
pub fn now_nanos() -> Option<u64> {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 at the pointer, a local.
    (unsafe { proxy_get_current_time_nanoseconds(&mut nanos) } == OK).then_some(nanos)
}

pub fn set_tick_period_ms(period: u32) {
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(period) };
}

/// Up to `max_size` bytes of a buffer from `start`; `None` when it is absent or empty.
pub fn buffer(buffer: Buffer, start: usize, max_size: usize) -> Option<Vec<u8>> {
    returned(|data, size| {
        // SAFETY: the host writes the pointer and size at the two out-pointers, locals of
        // `returned`.
        unsafe { proxy_get_buffer_bytes(buffer, start, max_size, data, size) }
    })
    .ok()
    .flatten()
}

/// A whole header map in the ABI's serialization (a u32 count, then (name length, value length)
/// u32 pairs, then each name and value followed by a NUL), in one hostcall: the pairs are read in
/// place from it, where the SDK's `get_http_request_headers` allocates a `String` and a `Vec` per
/// header. Empty when the map is not available.
pub fn header_map_pairs(map: HeaderMap) -> Vec<u8> {
    returned(|data, size| {
        // SAFETY: the host writes the pointer and size at the two out-pointers.
        unsafe { proxy_get_header_map_pairs(map, data, size) }
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// One header's value (empty when the header is present with an empty value); `None` when it is
/// absent or the map is not available (an HTTP call's response without headers).
pub fn header(map: HeaderMap, name: &str) -> Option<Vec<u8>> {
    returned(|data, size| {
        // SAFETY: the host reads the key at a live `&str` and writes the pointer and size at the
        // two out-pointers.
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), data, size) }
    })
    .ok()
    .map(Option::unwrap_or_default)
}

/// Sets a header, replacing any value it had.
pub fn replace_header(map: HeaderMap, name: &str, value: &str) {
    // SAFETY: the host reads the key and the value at two live `&str`s.
    unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    };
}

/// Adds a value to a header, keeping those it had.
pub fn add_header(map: HeaderMap, name: &str, value: &str) {
    // SAFETY: the host reads the key and the value at two live `&str`s.
    unsafe {
        proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    };
}

pub fn remove_header(map: HeaderMap, name: &str) {
    // SAFETY: the host reads the key at a live `&str`.
    unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) };
}

/// An Envoy attribute; `path` is its segments joined by NUL (`b"source\0address"`), as the ABI
/// takes it, so no path is built per request.
pub fn property(path: &[u8]) -> Option<Vec<u8>> {
    returned(|data, size| {
        // SAFETY: the host reads the path at a live slice and writes the pointer and size at the
        // two out-pointers.
        unsafe { proxy_get_property(path.as_ptr(), path.len(), data, size) }
    })
    .ok()
    .flatten()
}

/// A shared-data value and its compare-and-swap version (`None` for 0: never written); `None` as
/// a whole when the host failed.
pub fn shared_data(key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
    let mut cas = 0u32;
    let value = returned(|data, size| {
        // SAFETY: the host reads the key at a live `&str` and writes the pointer, the size and
        // the version at the out-pointers, locals.
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) }
    });
    match value {
        Ok(value) => Some((value, (cas != 0).then_some(cas))),
        Err(NOT_FOUND) => Some((None, None)),
        Err(_) => None,
    }
}

/// Writes a shared-data value, if its version is still `cas` (`None`: whatever it is).
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetSharedError> {
    // SAFETY: the host reads the key and the value at a live `&str` and slice.
    let status = unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    };
    match status {
        OK => Ok(()),
        CAS_MISMATCH => Err(SetSharedError::CasMismatch),
        _ => Err(SetSharedError::Other),
    }
}

pub fn define_metric(kind: MetricType, name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the host reads the name at a live `&str` and writes the id at a local.
    (unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) } == OK).then_some(id)
}

pub fn increment_metric(id: u32, delta: i64) {
    // SAFETY: no pointers.
    unsafe { proxy_increment_metric(id, delta) };
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: no pointers.
    unsafe { proxy_record_metric(id, value) };
}

/// Dispatches an HTTP call to `cluster`; its token, or the status's name on failure (Envoy
/// answers `BadArgument` for an unknown cluster).
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, String> {
    let headers = sluice_core::header_map::serialize(headers);
    // An empty map: a u32 count of 0.
    let trailers = [0u8; 4];
    let body_ptr = if body.is_empty() {
        null()
    } else {
        body.as_ptr()
    };
    let mut token = 0u32;
    // SAFETY: the host reads the cluster, headers, body and trailers at live buffers of the
    // sizes passed, and writes the token at a local.
    let status = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body_ptr,
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            u32::try_from(timeout_ms).unwrap_or(u32::MAX),
            &mut token,
        )
    };
    match status {
        OK => Ok(token),
        status => Err(call_refused(status)),
    }
}

/// Why the host refused an HTTP call, for the log.
#[cold]
#[inline(never)]
fn call_refused(status: Status) -> String {
    match status {
        BAD_ARGUMENT => "BadArgument".to_string(),
        INTERNAL_FAILURE => "InternalFailure".to_string(),
        status => format!("status {status}"),
    }
}

/// Makes `context_id` the context later hostcalls act for (an HTTP call's response is read
/// through the context that dispatched it).
pub fn set_effective_context(context_id: u32) {
    // SAFETY: no pointers.
    unsafe { proxy_set_effective_context(context_id) };
}
