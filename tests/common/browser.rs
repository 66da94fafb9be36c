//! Headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: the browser reads JSON commands on fd 3 and writes answers on fd
//! 4, each ended by a NUL byte). Enough to open a page, evaluate scripts in it, wait for a
//! condition with a deadline (never a sleep) and take a screenshot: what `--dump-dom` cannot
//! do for a page that keeps working after its load event (the live page streams a run).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: Receiver<Value>,
    next_id: u64,
    profile: std::path::PathBuf,
}

/// One tab.
pub struct Page {
    session: String,
}

impl Browser {
    /// Start Chromium with a throw-away profile, its window `width` x `height`.
    pub fn launch(width: u32, height: u32) -> Browser {
        let exe = ["chromium", "chromium-browser"]
            .into_iter()
            .find(|c| Command::new(c).arg("--version").output().is_ok())
            .expect("chromium is installed (.ci/run installs it)");
        static LAUNCHED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "generals-cdp-{}-{}",
            std::process::id(),
            LAUNCHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let (cmd_read, cmd_write) = std::io::pipe().unwrap();
        let (ans_read, ans_write) = std::io::pipe().unwrap();
        let (r, w) = (cmd_read.as_raw_fd(), ans_write.as_raw_fd());
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("GENERALS_CHROMIUM_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        // SAFETY: only fcntl and dup2, which are async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first: `r` or `w` may itself be 3 or 4.
                let (r, w) = (
                    libc::fcntl(r, libc::F_DUPFD, 10),
                    libc::fcntl(w, libc::F_DUPFD, 10),
                );
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop((cmd_read, ans_write));
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(ans_read);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let mut byte = [0u8; 1];
                loop {
                    match reader.read(&mut byte) {
                        Ok(1) if byte[0] == 0 => break,
                        Ok(1) => buf.push(byte[0]),
                        _ => return,
                    }
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Browser {
            child,
            to: cmd_write,
            from,
            next_id: 0,
            profile,
        }
    }

    /// Send a command (to a tab when `session` is given) and wait for its answer.
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_send(session, method, params) {
            Ok(v) => v,
            Err(error) => panic!("{method}: {error}"),
        }
    }

    /// [`Browser::send`], with the error Chromium answered instead of a panic.
    fn try_send(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("chromium reads its pipe");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => match v.get("error") {
                    Some(error) => return Err(error.clone()),
                    None => return Ok(v["result"].clone()),
                },
                Ok(_) => continue, // an event
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in 60 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium is gone"),
            }
        }
    }

    /// A new tab at `url`.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.send(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = self.send(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        let page = Page {
            session: attached["sessionId"].as_str().unwrap().to_string(),
        };
        self.send(Some(&page.session), "Page.enable", json!({}));
        self.send(Some(&page.session), "Page.navigate", json!({ "url": url }));
        page
    }

    /// The value of a script evaluated in `page` (promises awaited).
    pub fn eval(&mut self, page: &Page, script: &str) -> Value {
        let r = self.send(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": script, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{script}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Evaluate `script` until it is true, for at most `limit`; false if it never was. While
    /// the page is loading or navigating, a script that throws or cannot run counts as false.
    pub fn wait_for(&mut self, page: &Page, script: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let script =
            format!("(() => {{ try {{ return !!({script}); }} catch (e) {{ return false; }} }})()");
        while Instant::now() < deadline {
            // A page that is navigating answers "Inspected target navigated or closed": not
            // yet true.
            let r = self.try_send(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": script, "returnByValue": true, "awaitPromise": true }),
            );
            if r.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return true;
            }
            // Ask again soon: a condition polled with a deadline, not a fixed wait.
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The page's DOM as HTML.
    pub fn dom(&mut self, page: &Page) -> String {
        let v = self.eval(page, "document.documentElement.outerHTML");
        v.as_str().unwrap_or_default().to_string()
    }

    /// A PNG of what the tab shows.
    pub fn screenshot(&mut self, page: &Page) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.send(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
