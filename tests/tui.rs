//! `coroner tui` driven in a real pseudo-terminal (tmux): open a capture of a panicked
//! guest whose kernel log holds escape sequences, switch panes, search, go to a symbol,
//! quit, and check the terminal is restored; the same after SIGTERM. `tui --json` draws
//! every pane off-screen at 80x24 and 200x60 with no control character.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{alive, coroner, Dir};

/// A tmux session running one shell command, on a tmux server of its own (tests that
/// run at the same time must not share one: a server whose last session is killed
/// exits, and a `new-session` racing with that exit fails), killed on drop.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str, width: u16, height: u16) -> Self {
        let ok = tmux(name)
            .args(["new-session", "-d", "-s", name, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(cmd)
            .status()
            .expect("tmux is installed (samples/kit/ensure.sh installs it)")
            .success();
        assert!(ok, "tmux new-session failed");
        Self { name: name.into() }
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = tmux(&self.name)
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn literal(&self, text: &str) {
        let ok = tmux(&self.name)
            .args(["send-keys", "-t", &self.name, "-l", text])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        let out = tmux(&self.name)
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `needle`.
    fn wait_for(&self, needle: &str) -> String {
        self.wait_until(needle, |s| s.contains(needle))
    }

    /// Waits until the shell has printed the tty's canonical-mode flag after coroner
    /// ended (`icanon` or `-icanon`, alone on a line), and returns that screen.
    fn wait_for_tty_mode(&self) -> String {
        self.wait_until("the icanon line", |s| {
            s.contains("EXIT=") && s.lines().any(|l| matches!(l.trim(), "icanon" | "-icanon"))
        })
    }

    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "screen never showed {what:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&self.name)
            .args(["kill-session", "-t", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = tmux(&self.name)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// `tmux` talking to the server named `server`, with no configuration file.
fn tmux(server: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", server, "-f", "/dev/null"]);
    c
}

#[test]
fn tui_in_a_real_terminal() {
    if !kit::available_or_skip("tui_in_a_real_terminal") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        append: "coroner.hostile_log=1".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    let socket = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &socket, "-o", "vm.core.zst"],
    )
    .expect_code(0);
    drop(guest);

    // Off-screen: every pane at both sizes, no control character anywhere.
    for size in ["80x24", "200x60"] {
        let r = coroner(
            dir.path(),
            &["tui", "vm.core.zst", "--json", "--size", size],
        );
        r.expect_code(0);
        let j = r.json();
        let screens = j["screens"].as_array().unwrap();
        assert!(screens.len() >= 4);
        for s in screens {
            for row in s["rows"].as_array().unwrap() {
                let row = row.as_str().unwrap();
                assert!(!row.chars().any(|c| c.is_control()), "{row:?}");
            }
        }
        assert!(screens[0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("kernel panic")));
    }

    // In a terminal: tmux runs coroner, then reports the tty mode once coroner is gone.
    let bin = env!("CARGO_BIN_EXE_coroner");
    let cap = dir.path().join("vm.core.zst");
    let name = format!("coroner-tui-{}", std::process::id());
    let t = Tmux::start(
        &name,
        &format!(
            "{bin} tui {}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 60",
            cap.display()
        ),
        100,
        30,
    );
    let s = t.wait_for("Overview");
    assert!(s.contains("kernel panic"), "{s}");
    // The kernel log: search for the panic line, then the hostile record, escaped.
    t.keys(&["2"]);
    t.wait_for("Log");
    t.literal("/");
    t.literal("Kernel panic - not syncing");
    t.keys(&["Enter"]);
    let s = t.wait_for("Kernel panic - not syncing");
    assert!(!s.contains("not found"), "{s}");
    t.literal("/");
    t.literal("coroner-hostile");
    t.keys(&["Enter"]);
    let s = t.wait_for("coroner-hostile:");
    assert!(
        s.contains("\\e[2J") || s.contains("\\x1b"),
        "escape not shown escaped:\n{s}"
    );
    // Memory: go to a kernel symbol.
    t.keys(&["?"]);
    t.wait_for("help");
    t.keys(&["Escape"]);
    t.keys(&["6"]);
    t.literal(":");
    t.literal("panic");
    t.keys(&["Enter"]);
    // The memory pane says how it resolved the symbol: kernel virtual, then physical.
    let s = t.wait_for("go to panic: panic = v:");
    assert!(s.contains("= phys 0x"), "{s}");
    t.keys(&["q"]);
    // `echo EXIT` and `stty` run one after the other: wait for both lines.
    let s = t.wait_for_tty_mode();
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        s.lines().any(|l| l.trim() == "icanon"),
        "tty not restored:\n{s}"
    );
    assert!(!s.contains("Overview"), "alternate screen not left:\n{s}");
    drop(t);

    // SIGTERM restores the terminal too.
    let name = format!("coroner-tui-term-{}", std::process::id());
    let t = Tmux::start(
        &name,
        &format!(
            "{bin} tui {} </dev/tty & pid=$!; sleep 2; kill -TERM $pid; wait $pid; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 60",
            cap.display()
        ),
        100,
        30,
    );
    let s = t.wait_for_tty_mode();
    assert!(
        s.lines().any(|l| l.trim() == "icanon"),
        "tty not restored:\n{s}"
    );
}

/// Waits (10 s at most) for `pid` to be gone; the panic message says what it was doing.
fn wait_gone(pid: u32, what: &str) {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(10) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("coroner tui outlived its terminal ({what}): {stat}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An ssh session that drops, a tmux session killed: the TUI ends with its terminal
/// (before, it spun on end-of-input with ppid 1, ignoring SIGTERM).
#[test]
fn the_tui_ends_with_its_terminal() {
    let d = Dir::new();
    let bin = env!("CARGO_BIN_EXE_coroner");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/captures/panic.core.zst"
    );

    // A tmux session killed under it.
    let pidfile = d.join("tui.pid");
    let name = format!("coroner-hup-{}", std::process::id());
    let t = Tmux::start(
        &name,
        &format!("echo $$ > {}; exec {bin} tui {sample}", pidfile.display()),
        100,
        30,
    );
    t.wait_for("Overview");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    drop(t);
    wait_gone(pid, "tmux kill-session");

    // A pseudo-terminal whose other side is closed (what sshd does when the link drops),
    // with SIGHUP ignored so that only the hang-up of the tty itself can end it.
    let script = r#"
import fcntl, os, pty, select, signal, struct, subprocess, sys, termios
m, s = pty.openpty()
signal.alarm(60)  # a bound on the whole check
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
p = subprocess.Popen([sys.argv[1], "tui", sys.argv[2]], stdin=s, stdout=s, stderr=s,
                     start_new_session=True,
                     preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
os.close(s)
seen = b""
while len(seen) < 2000:
    r, _, _ = select.select([m], [], [], 20)
    if not r:
        sys.exit("the TUI never drew")
    seen += os.read(m, 65536)
print(p.pid, flush=True)
os.close(m)
p.wait(timeout=30)
"#;
    let out = Command::new("python3")
        .args(["-c", script, bin, sample])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    wait_gone(pid, "pty closed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
