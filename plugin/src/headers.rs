//! The request's header map in one hostcall, read in place.
//!
//! The SDK's `get_http_request_headers_bytes` copies every name and value into its own `String`
//! and `Vec` (two allocations per header, per request); here the host's buffer is kept and the
//! pairs borrow from it.
use proxy_wasm::types::{MapType, Status};
use std::ptr::null_mut;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// The serialized header map as the host returned it: a u32 count, then (name length, value
/// length) u32 pairs, then each name and value followed by a NUL.
pub struct HeaderMap {
    bytes: Vec<u8>,
}

impl HeaderMap {
    pub fn request() -> HeaderMap {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the host allocated `size` bytes at `data` through `proxy_on_memory_allocate`
        // (our allocator), and hands them over; the SDK takes ownership the same way.
        let bytes = unsafe {
            match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
                Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
                _ => Vec::new(),
            }
        };
        HeaderMap { bytes }
    }

    /// The serialized map, for `sluice_core::engine::Headers::Serialized`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}
