//! DRF allocator (outline; lands with the allocator module).
