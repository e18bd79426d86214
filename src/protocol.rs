//! One struct per wire message (outline; lands with the protocol module).
