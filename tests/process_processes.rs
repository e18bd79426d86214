//! The process layer between two OS processes: the `echo_node` example is started, pinged,
//! killed with SIGKILL and started again on the same port.

mod support {
    pub mod collector;
    pub mod echo;
}

use meso::process::{Node, NodeConfig, Upid};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::collector::{Event, Probe};

fn example(name: &str) -> PathBuf {
    // Integration tests run from target/<profile>/deps; examples are built beside them.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --examples` first",
        path.display()
    );
    path
}

struct EchoNode {
    child: Child,
    upid: Upid,
}

impl EchoNode {
    fn start(listen: &str) -> EchoNode {
        let mut child = Command::new(example("echo_node"))
            .arg(listen)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start echo_node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let upid = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        EchoNode {
            upid: upid.parse().unwrap(),
            child,
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for EchoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn two_processes_exchange_then_kill_9_gives_exited_and_a_restart_is_a_new_incarnation() {
    let mut echo = EchoNode::start("127.0.0.1:0");
    let a = Node::start(NodeConfig::default()).await.unwrap();
    let mut pa = Probe::start(&a, "pa");
    pa.process.link(&echo.upid);
    for seq in 0..1000 {
        pa.ping(&echo.upid, seq);
    }
    for seq in 0..1000 {
        assert_eq!(
            pa.next("pong").await,
            Event::Pong {
                from: echo.upid.clone(),
                seq
            }
        );
    }

    echo.kill9();
    assert_eq!(
        pa.next("exited after kill -9").await,
        Event::Exited(echo.upid.clone())
    );
    assert_eq!(
        pa.drain(Duration::from_millis(200)).await,
        vec![],
        "Exited fired twice"
    );

    // Same address, new process: a new incarnation, and traffic flows again.
    let echo2 = EchoNode::start(&echo.upid.addr().to_string());
    assert_eq!(echo2.upid, echo.upid);
    pa.process.link(&echo2.upid);
    pa.ping(&echo2.upid, 5000);
    assert_eq!(
        pa.next("pong from the new process").await,
        Event::Pong {
            from: echo2.upid.clone(),
            seq: 5000
        }
    );
    assert_eq!(a.stats().connections_dialed, 2);
}

#[actix_rt::test]
async fn a_process_that_dies_before_the_link_is_reported_promptly() {
    let mut echo = EchoNode::start("127.0.0.1:0");
    echo.kill9();
    let a = Node::start(NodeConfig::default()).await.unwrap();
    let mut pa = Probe::start(&a, "pa");
    pa.process.link(&echo.upid);
    assert_eq!(pa.next("exited").await, Event::Exited(echo.upid.clone()));
}
