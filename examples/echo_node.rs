//! A node with one actor, `echo`, that answers every `test.Ping` with a `test.Pong`.
//!
//! `cargo run --example echo_node -- [ip:port]` prints `ready echo@ip:port` once it listens, then runs
//! until killed. The process-layer tests start it as a second OS process.

#[path = "../tests/support/echo.rs"]
mod echo;

use echo::{Echo, Ping};
use meso::process::{Node, NodeConfig};
use std::io::Write;
use std::net::SocketAddr;

fn main() {
    let listen: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        None => "127.0.0.1:0".parse().unwrap(),
        Some(Ok(addr)) => addr,
        Some(Err(e)) => {
            eprintln!("echo_node: bad listen address: {e}");
            std::process::exit(2);
        }
    };
    let system = actix_rt::System::new();
    system.block_on(async move {
        let node = match Node::start(NodeConfig::listen(listen)).await {
            Ok(node) => node,
            Err(e) => {
                eprintln!("echo_node: {e}");
                std::process::exit(1);
            }
        };
        let process = node.process("echo").expect("valid name");
        let (upid, _addr) = node
            .actor::<Echo>("echo")
            .handle::<Ping>()
            .start(Echo { process })
            .expect("free name");
        println!("ready {upid}");
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
    });
}
