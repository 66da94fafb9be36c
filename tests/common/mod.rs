//! The test harness every test file shares: free port blocks, processes ([`proc`]), clusters
//! of Rust, Python or both and the client runner ([`cluster`]), raw HTTP and XML-RPC calls
//! ([`http`]). Every helper has a deadline; nothing sleeps to wait for a server.

pub mod browser;
pub mod cluster;
pub mod http;
pub mod proc;
pub mod run;

pub use cluster::*;
pub use http::*;
pub use proc::*;
pub use run::*;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Ports in a block; P sits in the middle so names a few letters away (T, A...) stay inside
/// the block and never reach another test's nodes.
pub const BLOCK: u16 = 64;
const RANGE: std::ops::Range<u32> = 20_000..32_000;
static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

/// A port base (port of P) whose whole block of [`BLOCK`] ports was free when allocated.
/// Blocks lie below Linux's ephemeral range, so outgoing connections never take them.
pub fn port_base() -> u16 {
    let blocks = (RANGE.end - RANGE.start) / u32::from(BLOCK);
    let start = std::process::id().wrapping_mul(2_654_435_761) % blocks;
    for _ in 0..blocks {
        let i = (start + NEXT_BLOCK.fetch_add(1, Ordering::SeqCst)) % blocks;
        let first = RANGE.start + i * u32::from(BLOCK);
        if (first..first + u32::from(BLOCK))
            .all(|p| TcpListener::bind(("127.0.0.1", p as u16)).is_ok())
        {
            return (first + u32::from(BLOCK) / 2) as u16;
        }
    }
    panic!("no free port block in {RANGE:?}");
}

/// Port of a one-letter node under the original rule.
pub fn port_of(base: u16, name: char) -> u16 {
    (i32::from(base) + name as i32 - 'P' as i32) as u16
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python_server_script() -> PathBuf {
    root().join("scripts/python/server.py")
}

pub fn python_client_script() -> PathBuf {
    root().join("scripts/python/client.py")
}

pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_server")
}

pub fn client_bin() -> &'static str {
    env!("CARGO_BIN_EXE_client")
}

/// Poll until every port accepts a connection (deadline 15 s).
pub fn wait_ports(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for &port in ports {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {port} not ready within 15 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
