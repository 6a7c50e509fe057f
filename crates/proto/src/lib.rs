//! The wire contract of Closeout: every RPC and event message generated
//! from `proto/closeout/v1`, the encoded descriptor set (for gRPC server
//! reflection and for canonical proto3 JSON), and a few helpers that every
//! service needs on top of the generated types.

pub mod json;
pub mod time;

/// Generated code for package `closeout.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("closeout.v1");
}

pub use v1::*;

/// Encoded `FileDescriptorSet` of all Closeout protos (and the well-known
/// types they import), for tonic-reflection and prost-reflect.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/closeout_descriptor.bin"));

/// Fully qualified name of a message in package `closeout.v1`.
pub fn full_name(message: &str) -> String {
    format!("closeout.v1.{message}")
}
