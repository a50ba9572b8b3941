//! The command line: clap definitions only. Nothing here opens a file or a socket.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Post-mortem forensics for frozen QEMU/KVM guests.
#[derive(Debug, Parser)]
#[command(name = "coroner", version, about, long_about = None, after_help = TOP_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Examples and exit codes after `coroner --help`.
const TOP_HELP: &str = "\
Examples:
  coroner capture --qmp /run/qemu/vm1.qmp -o vm1.core.zst   # a frozen guest, kept frozen
  coroner analyze vm1.core.zst                               # why did it die
  coroner dmesg vm1.core.zst --level err+                    # its kernel log, errors and worse
  coroner sym vm1.core.zst ffffffff9a0b2c10                  # an address to a symbol
  coroner report vm1.core.zst -o vm1-report                  # a bundle for a bug report
  coroner watch --qmp-dir /run/coroner --dir /var/lib/coroner --json   # for HA stacks
  coroner completions bash > /etc/bash_completion.d/coroner
  coroner man | man -l -

Every command with --json prints one JSON object (schema 2: addresses as \"0x...\"
strings); a failure under --json prints {\"error\": {\"message\", \"class\", \"exit_code\"}}.

Exit codes:
  0    success
  1    unexpected failure
  2    bad command line
  3    input unreadable, truncated or corrupt
  4    output could not be written (permissions, full disk)
  5    the guest is not frozen (capture without --stop/--allow-running, or resumed meanwhile)
  6    qemu failed: unreachable, went away, refused the dump, garbage or no answer
  7    the dump does not hold what was asked (no kernel found, no such symbol)
  130  interrupted (SIGINT/SIGTERM); no output claims to be complete";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture a frozen guest (over QMP, or a libvirt domain) into a compressed ELF core,
    /// without resuming it.
    #[command(after_help = "\
Examples:
  coroner capture --qmp /run/qemu/vm1.qmp -o vm1.core.zst
  coroner capture --qmp tcp:127.0.0.1:4444 -o vm1.core.zst
  coroner capture --qmp SOCK --stop -o vm1.core.zst     # freeze a running guest first
  coroner capture --qmp SOCK --wait-frozen 3600 -o vm1.core.zst   # capture when it dies
  coroner capture --domain vm1 -o vm1.core.zst          # libvirt's own dump, no taint
  coroner capture --domain vm1 --dump-format kdump -o vm1.core.zst   # big idle guests
  coroner capture --qmp SOCK -o s3://crashes/host1/vm1.core.zst   # straight to a bucket

--domain goes through libvirt (virsh): its memory-only dump into a private FIFO, the
domain's XML and libvirt's qemu log (/var/log/libvirt/qemu/NAME.log) in the record; no
monitor passthrough unless --monitor, which taints the domain. Ctrl-C stops reading;
libvirt's dump job cannot be aborted and ends when qemu's next write fails.

A running guest is refused (exit 5) unless --stop (freeze it with `stop` and leave it
stopped: the failover-safe freeze) or --allow-running (a live dump; qemu pauses the guest
while it dumps). A frozen guest is never resumed, reset or modified. Over a unix socket
the dump streams through a pipe (no uncompressed copy on disk); over TCP qemu writes a
file next to OUTPUT, which is compressed and removed.

An s3://BUCKET/KEY output is streamed into a multipart upload as qemu writes (no local
copy; the endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
The object appears only when complete; a failed capture aborts the upload, so
--keep-partial is refused there. FIFOs and a TCP monitor's dump file go in $TMPDIR.")]
    Capture(CaptureArgs),
    /// Show what a dump holds: format, guest architecture, memory, vCPU registers.
    #[command(after_help = "\
Examples:
  coroner inspect vm1.core.zst
  coroner inspect /var/crash/vm1.elf --json | jq '.vcpus[0].qemu.rip'")]
    Inspect(InspectArgs),
    /// Compress a qemu ELF dump (e.g. from `virsh dump --memory-only`) into a .core.zst.
    #[command(after_help = "\
Examples:
  coroner compress vm1.elf -o vm1.core.zst
  coroner compress vm1.elf -o vm1.core.zst --compression-level 1 --threads 4 --json
  coroner compress s3://dumps/vm1.kdump -o vm1.core.zst   # read in place

The output is a seekable zstd stream: `zstd -d vm1.core.zst` gives back the exact ELF.
It is written under a fresh temporary name (mode 0600) and renamed to OUT only when
complete; a failure leaves nothing.")]
    Compress(CompressArgs),
    /// Print the guest's kernel log from the dump alone (no debuginfo needed).
    #[command(after_help = "\
Examples:
  coroner dmesg vm1.core.zst
  coroner dmesg vm1.core.zst --level err+       # errors and worse
  coroner dmesg vm1.core.zst --level err,warn
  coroner dmesg vm1.core.zst --since-boot 120 --caller
  coroner dmesg vm1.core.zst --json | jq -r '.records[] | select(.level <= 3) | .text'

Lines are printed as the kernel's console prints them: [seconds.micros] text, every line
of a multi-line record with its prefix. Control characters from the guest are escaped.")]
    Dmesg(DmesgArgs),
    /// Symbolize a kernel address, or find the address of a kernel symbol.
    #[command(after_help = "\
Examples:
  coroner sym vm1.core.zst ffffffff9a0b2c10      # -> name+0xoff/0xsize
  coroner sym vm1.core.zst panic                 # -> address
  coroner sym vm1.core.zst panic sysrq_handle_crash 0xffffffff9a0b2c10 --json

Symbols come from the kallsyms tables in guest memory, and for module code from each
module's own symbol table (`name+0xoff/0xsize [module]`).")]
    Sym(SymArgs),
    /// List the guest kernel's loaded modules, as /proc/modules would have.
    #[command(after_help = "\
Examples:
  coroner modules vm1.core.zst
  coroner modules vm1.core.zst --json | jq -r '.modules[] | \"\\(.name) \\(.address)\"'

The module list and the layout of struct module come from guest memory: the `modules`
list head from kallsyms, the layout from the kernel's BTF (CONFIG_DEBUG_INFO_BTF, as
distribution kernels have). Without them the command says what is missing and exits 7.")]
    Modules(ModulesArgs),
    /// List the guest kernel's tasks, as crash's ps does.
    #[command(after_help = "\
Examples:
  coroner ps vm1.core.zst
  coroner ps vm1.core.zst --state D          # tasks in uninterruptible sleep
  coroner ps vm1.core.zst --pid 1 --pid 42
  coroner ps vm1.core.zst --json | jq '.current'

Columns: PID, PPID, the CPU it last ran on, the state as ps prints it (R running, S
sleeping, D disk sleep, T stopped, t traced, Z zombie, X dead, P parked, I idle), how long
ago it last got a CPU, and the command; `>` marks the task each CPU runs now, kernel
threads are in [brackets]. The lists come from init_task and each process's threads,
with struct task_struct's layout from the kernel's BTF; without BTF the command says what
is missing and exits 7.")]
    Ps(PsArgs),
    /// Kernel backtraces of the vCPUs and tasks, unwound with the kernel's ORC tables.
    #[command(after_help = "\
Examples:
  coroner bt vm1.core.zst                    # every vCPU
  coroner bt vm1.core.zst --state D          # tasks in uninterruptible sleep
  coroner bt vm1.core.zst --pid 1 --cpu 0
  coroner bt vm1.core.zst --all --json | jq '.backtraces[] | select(.complete | not)'

Frames print as the kernel prints them (function+0xoff/0xsize [module]); where the kernel
was entered (a system call, an interrupt, an exception) the saved RIP/RSP/EFLAGS follow.
Each backtrace ends with why it stopped (the end of the stack, user mode, or what was
missing) and where it started: a vCPU's registers from the dump's notes, or the switch
frame a sleeping task left on its stack. A task a CPU runs is unwound from that vCPU.
The unwind tables (.orc_unwind_ip and .orc_unwind, and each module's) are read from
guest memory through kallsyms. Without them, a kernel built with frame pointers is
walked along its rbp chain; where an unwind stops short, the rest of the stack is
scanned for kernel text addresses, printed after `? ` as unreliable, as the kernel does.
Without kallsyms the command says what is missing and exits 7.")]
    Bt(BtArgs),
    /// Why did the guest die: the verdict, then how each fact was obtained.
    #[command(after_help = "\
Examples:
  coroner analyze vm1.core.zst
  coroner analyze vm1.core.zst --json | jq .verdict
  coroner analyze vm1.core.zst --hung-after 30   # tasks in D for 30 s are hung

A guest whose kernel log has no panic, oops or machine check is described by what it is
stuck on: a vCPU running one task in kernel mode past twice the guest's watchdog_thresh
(\"BUG: soft lockup in F\"), else the longest of the tasks in D past the hung-task
threshold (\"INFO: task hung in F\"), F being the first frame of its backtrace that is not
a wait function.")]
    Analyze(AnalyzeArgs),
    /// Decode the machine-check record: error, CPU, bank, address, severity, host or guest.
    #[command(after_help = "\
Examples:
  coroner mce vm1.core.zst
  coroner mce vm1.core.zst --qemu-log /var/log/libvirt/qemu/vm1.log
  coroner mce vm1.core.zst --json | jq '.records[] | {cpu: .raw.cpu, bank: .raw.bank, severity: .decoded.severity.message}'

Records come from the kernel log's [Hardware Error] lines and from struct mce records
in guest memory (mces_seen, the MCE event pool, the /dev/mcelog buffer), merged and
decoded as `mcelog --ascii` would. The host's side comes from qemu's MEMORY_FAILURE
events in the capture (recorded by `capture --wait-frozen`) and qemu's log.")]
    Mce(MceArgs),
    /// Why KVM stopped the guest: emulation failure or entry failure, decoded and explained.
    #[command(after_help = "\
Examples:
  coroner exit vm1.core.zst                      # qemu's log from the capture
  coroner exit vm1.core.zst --qemu-log /var/log/libvirt/qemu/vm1.log
  coroner exit --qemu-log qemu.log               # the log alone, no capture
  coroner exit vm1.core.zst --json | jq .verdict

Parses qemu's report (`KVM internal error. Suberror: N`, `extra data[i]`, `emulation
failure`, `KVM: entry failed, hardware error 0x...`, the register dump and `Code=`),
decodes the sub-error's data by kernel version, disassembles the instruction at RIP
(bytes from KVM's data, guest memory or Code=), follows its memory operands to
guest-physical addresses and their owners in qemu's `info mtree -f`, and says why KVM
could not handle it.")]
    Exit(ExitArgs),
    /// Browse a capture in the terminal: overview, kernel log, vCPUs, MCE, exit, memory, events.
    #[command(after_help = "\
Examples:
  coroner tui vm1.core.zst
  coroner tui vm1.core.zst --json --size 120x40 | jq -r '.screens[1].rows[]'

Keys: q quits, Tab / 1-9 switch panes, j/k and arrows scroll, PgUp/PgDn, g/G top and
bottom, / searches (n/N repeat), : goes to an address or symbol, ? shows every key.
--json draws each pane once off-screen and prints its rows (for scripts and bug reports).")]
    Tui(TuiArgs),
    /// Keep only the pages the analyses read: a small capture for a bug report or a sample.
    #[command(after_help = "\
Examples:
  coroner slim vm1.core.zst -o vm1.slim.core.zst
  coroner slim vm1.core.zst -o vm1.slim.core.zst --json

Runs every analysis (kernel view, kallsyms, the whole kernel log, MCE, exit reason, the
code around each RIP and the top of each stack, the page tables walked) while noting the
pages read, and writes a new container with only those pages, every note and the capture
metadata (marked slim, with the source's digest). Every analysis command gives the same
answer on it; a read of a dropped page is absent, never zeros.")]
    Slim(SlimArgs),
    /// Write a bug-report bundle: a Markdown summary, the JSON report, the slim capture.
    #[command(after_help = "\
Examples:
  coroner report vm1.core.zst -o vm1-report
  coroner report vm1.core.zst -o vm1-report --redact     # no capture, only the log's tail
  coroner report vm1.core.zst -o vm1-report --json

DIR is created (mode 0700) and must not exist. It receives summary.md (verdict, exit
reason, machine check, registers, the end of the kernel log, how each fact is known: fit
to paste into an issue tracker), report.json (the analyze report, with its machine_check and kvm_exit analyses) and
capture.slim.core.zst (the pages the analyses read; see `coroner slim`). --redact leaves
out the slim capture, which holds kernel memory and the whole log, so the bundle holds
only the summary and the JSON with the log's tail.")]
    Report(ReportArgs),
    /// For HA agents: is the guest running, frozen (failover-safe), captured, or gone?
    #[command(after_help = "\
Examples:
  coroner status --qmp /run/qemu/vm1-coroner.qmp
  coroner status --qmp /run/qemu/vm1-coroner.qmp --dir /var/lib/coroner --json
  coroner status --domain vm1 --dir /var/lib/coroner     # libvirt: virsh domstate --reason

Prints one of: running, frozen (qemu holds the guest in paused, internal-error,
guest-panicked, io-error, watchdog or shutdown: no guest code runs, so failing over needs
no fencing), frozen-captured (and a complete capture of this qemu in this state is in
--dir), gone (no qemu listens), unknown (qemu answered nonsense or too late; a busy
monitor looks like this). Never changes the guest.

Exit codes (OCF resource-agent monitor codes, usable as they are):
  0  running          OCF_SUCCESS
  1  frozen, frozen-captured or unknown   OCF_ERR_GENERIC (the resource failed)
  7  gone             OCF_NOT_RUNNING
  2  bad command line")]
    Status(StatusArgs),
    /// Watch guests over QMP and capture each the moment it freezes (for HA stacks).
    #[command(after_help = "\
Examples:
  coroner watch --qmp /run/qemu/vm1-coroner.qmp --dir /var/lib/coroner --json
  coroner watch --qmp-dir /run/coroner --dir /var/lib/coroner \\
      --on guest-panicked,internal-error,io-error,watchdog,memory-failure \\
      --keep-partial --exec /etc/coroner/notify-ha
  coroner watch --qmp web1=/run/web1.qmp --qmp db1=/run/db1.qmp --dir /srv/captures --once
  coroner watch --all-domains --dir /var/lib/coroner --json   # every libvirt domain
  coroner watch --qmp-dir /run/coroner --dir s3://crashes/fleet/ --state-dir /var/lib/coroner

Over QMP, each guest needs a monitor of its own for coroner (qemu -qmp
unix:PATH,server=on,wait=off): a monitor serves one client at a time. libvirt domains
need nothing: --domain NAME or --all-domains follows them through libvirt's events
(virsh event) and captures through libvirt's own dump, with the events in the record. When a
guest enters a trigger state, coroner captures it at once into
DIR/NAME-YYYYMMDDTHHMMSSZ-REASON.core.zst (0600) without resuming it, then announces it.
Triggers: internal-error, guest-panicked, io-error, watchdog, shutdown, paused, ... (any
frozen run state) and memory-failure (a guest that freezes after qemu reported a host
memory error to it). Default: internal-error,guest-panicked,io-error,watchdog.

Announcements (one line each on stdout; JSON with --json): watching, frozen, captured,
capture-failed, memory-failure, resumed, gone. --exec CMD runs `sh -c CMD` for each,
one at a time, with CORONER_EVENT, CORONER_GUEST, CORONER_QMP, CORONER_HEALTH,
CORONER_RUN_STATE, CORONER_REASON, CORONER_CAPTURE, CORONER_KEPT (a .partial kept),
CORONER_QEMU_PID, CORONER_LATENCY_MS, CORONER_DETAIL, CORONER_EVENTS (qemu's events,
JSON) and CORONER_JSON (the whole announcement) in its environment; its output goes to
stderr.

qemu restarting is followed (reconnect with backoff up to --max-backoff); a qemu that
dies is announced as gone. Diagnostics go to stderr (with journal priorities under
systemd). SIGTERM or SIGINT: stop watching, finishing a capture in progress; a second
signal exits at once (a capture cut short is left as its temporary .NAME.*.tmp, never
under a name that claims to be complete).

Exit codes: 0 stopped by a signal, or with --once every guest captured; 6 with --once a
guest went away or its capture failed; 2 bad command line; 4 DIR not writable.")]
    Watch(WatchArgs),
    /// Write the plain ELF core held by a .core.zst, for crash, drgn or gdb.
    #[command(after_help = "\
Examples:
  coroner export vm1.core.zst -o vm1.elf
  coroner export s3://crashes/host1/vm1.core.zst -o vm1.elf   # read in place
  crash vmlinux vm1.elf

The bytes are checked against the digest recorded when the container was written.")]
    Export(ExportArgs),
    /// Check a .core.zst against the content digest recorded when it was written.
    #[command(after_help = "\
Examples:
  coroner verify vm1.core.zst
  coroner verify --json captures/*.core.zst

Every frame is decompressed (each zstd frame carries its own checksum) and the content
digest computed: format 2 records the BLAKE3 of the frame manifest (each frame's BLAKE3,
one hex line each), format 1 the sha256 of the whole content. The same check with
standard tools (format 2; FRAME_SIZE is the frame_size that `coroner inspect --json`
shows, 131072 by default; b3sum is packaged by Debian, Fedora, Arch and Homebrew):
  zstd -dc vm1.core.zst | split -b FRAME_SIZE --filter='b3sum --no-names' | b3sum --no-names

Exit status: 0 when every file matches, 3 when one does not or cannot be read.")]
    Verify(VerifyArgs),
    /// Group captures by crash signature: which guests died the same way, how often, when.
    #[command(after_help = "\
Examples:
  coroner triage /var/lib/coroner
  coroner triage /var/lib/coroner --since 7d --json
  coroner triage /srv/captures/*/ --no-store       # a read-only archive
  coroner triage s3://captures/ --since 7d          # a bucket (AWS_* variables)

Each capture is signed with the crash title `coroner analyze` gives it (syzkaller-style:
\"kernel panic: REASON in F\", \"BUG: unable to handle page fault in F\", \"INFO: task
hung in F\", \"BUG: soft lockup in F\"; a machine check's class and bank; a KVM
emulation failure's instruction and MMIO owner), or, when the dump shows no failure, its
run state. The signature is stored beside the capture as CAPTURE.sig.json (0600; an
object beside it in a bucket), so a second run reads only captures that are new or
changed; `coroner watch` signs its captures as it makes them. Groups are sorted by
count: first and last seen, guests, hosts, and the latest capture as an example.

Exit status: 0; 3 when a capture could not be read (the others are still grouped).")]
    Triage(TriageArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  coroner completions bash > /etc/bash_completion.d/coroner
  coroner completions zsh > \"${fpath[1]}/_coroner\"
  coroner completions fish > ~/.config/fish/completions/coroner.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff): of coroner, or of one command.
    #[command(after_help = "\
Examples:
  coroner man | man -l -
  coroner man capture | man -l -
  coroner man > /usr/local/share/man/man1/coroner.1")]
    Man(ManArgs),
}

/// `coroner verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .core.zst containers.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner triage`.
#[derive(Debug, Args)]
pub struct TriageArgs {
    /// Directories of captures (every NAME.core.zst in them), capture files, or
    /// object-store prefixes (s3://BUCKET/PREFIX/).
    #[arg(required = true, value_name = "DIR|FILE|s3://BUCKET/PREFIX/")]
    pub sources: Vec<PathBuf>,
    /// Only captures taken since WHEN: a duration ago (7d, 36h) or a time (2026-12-01,
    /// 2026-12-01T10:00:00Z).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Do not store new signatures beside the captures.
    #[arg(long)]
    pub no_store: bool,
    /// Captures analysed at once [default: the number of CPUs; at least 8 for s3://].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    pub shell: clap_complete::Shell,
}

/// `coroner man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: coroner's own, which lists them all).
    pub command: Option<String>,
}

/// How containers are compressed (`capture`, `watch`, `compress`).
#[derive(Debug, Args)]
pub struct CompressionArgs {
    /// zstd compression level, 1 (fastest) to 19 [default: 1 for capture and watch, whose
    /// speed keeps the HA stack waiting, 3 with --dump-format kdump; 3 for compress]. The old spelling is still
    /// accepted, hidden.
    #[arg(
        long = "compression-level",
        alias = "level",
        value_name = "N",
        value_parser = clap::value_parser!(i32).range(1..=19)
    )]
    pub compression_level: Option<i32>,
    /// Compression threads [default: one more than the cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The format qemu dumps in (`capture`, `watch`).
#[derive(Debug, Args)]
pub struct DumpFormatArg {
    /// elf: qemu's ELF, kept byte for byte (every page goes through the pipe); kdump:
    /// qemu's kdump format, turned into the same ELF core as it arrives (qemu skips zero
    /// pages but compresses the rest on one thread): much faster for a large, mostly
    /// idle guest, slower for a busy one. README, "Measured figures".
    #[arg(long, value_enum, default_value_t = DumpFormatChoice::Elf, value_name = "FORMAT")]
    pub dump_format: DumpFormatChoice,
}

/// `--dump-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormatChoice {
    /// qemu's ELF.
    Elf,
    /// qemu's kdump format (lzo, snappy or zlib, the fastest it has).
    Kdump,
}

impl DumpFormatArg {
    /// The zstd level when none is asked for: 1 for qemu's ELF, where coroner compresses
    /// every page the guest uses while qemu waits; 3 for the kdump stream, where qemu's
    /// own one-thread compression sets the pace and coroner's costs little.
    pub fn default_level(&self) -> i32 {
        match self.dump_format {
            DumpFormatChoice::Elf => CAPTURE_LEVEL,
            DumpFormatChoice::Kdump => COMPRESS_LEVEL,
        }
    }

    /// The capture library's choice.
    pub fn get(&self) -> coroner_capture::DumpFormat {
        match self.dump_format {
            DumpFormatChoice::Elf => coroner_capture::DumpFormat::Elf,
            DumpFormatChoice::Kdump => coroner_capture::DumpFormat::Kdump,
        }
    }
}

/// The compression level of `capture` and `watch`: on a busy 2 GiB guest level 3 takes
/// about 15% longer for 2% less size (README, "Measured figures").
pub const CAPTURE_LEVEL: i32 = 1;

/// The compression level of `compress`, which no frozen guest waits for.
pub const COMPRESS_LEVEL: i32 = 3;

impl CompressionArgs {
    /// The container options these give, with `level` unless one was asked for, the rest
    /// default.
    pub fn write_options(&self, level: i32) -> coroner_formats::WriteOptions {
        let default = coroner_formats::WriteOptions::default();
        coroner_formats::WriteOptions {
            level: self.compression_level.unwrap_or(level),
            threads: self.threads.unwrap_or(default.threads),
            ..default
        }
    }
}

/// The dump a command reads.
#[derive(Debug, Args)]
pub struct DumpArg {
    /// A capture (.core.zst) or a qemu ELF dump.
    pub file: PathBuf,
}

/// How the kernel is found in a dump.
#[derive(Debug, Args)]
pub struct KernelArgs {
    /// Do not use VMCOREINFO: derive the kernel view from the vCPU state, the page tables
    /// and kallsyms alone (when VMCOREINFO is damaged or not trusted).
    #[arg(long)]
    pub ignore_vmcoreinfo: bool,
}

/// Text or JSON on stdout.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text (README, "JSON output").
    #[arg(long)]
    pub json: bool,
}

/// Whether an existing output may be replaced.
#[derive(Debug, Args)]
pub struct OverwriteArg {
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// A libvirt domain instead of a QMP monitor.
#[derive(Debug, Args)]
pub struct DomainArg {
    /// A libvirt domain instead of --qmp, through virsh: its state, and for a capture
    /// libvirt's own memory-only dump into a FIFO (no monitor passthrough, so the domain
    /// is not tainted).
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,
    /// The libvirt connection for --domain [default: qemu:///system].
    #[arg(long, value_name = "URI")]
    pub connect: Option<String>,
}

/// The connection URI: `connect`, or libvirt's system connection.
pub fn libvirt_uri(connect: &Option<String>) -> String {
    connect
        .clone()
        .unwrap_or_else(|| coroner_capture::DEFAULT_URI.to_string())
}

impl DomainArg {
    /// The domain asked for, or `None` for the QMP path; options that need a domain
    /// (`--connect`, and `--monitor` when `monitor`) without one are usage errors.
    pub fn domain(&self, monitor: bool) -> anyhow::Result<Option<coroner_capture::Domain>> {
        use crate::exit::{ClassifyExt, ExitClass};
        let Some(name) = &self.domain else {
            let flag = if monitor { "--monitor" } else { "--connect" };
            if monitor || self.connect.is_some() {
                return Err(std::io::Error::other(format!("{flag} is for --domain")))
                    .classify(ExitClass::Usage, || flag.into());
            }
            return Ok(None);
        };
        Ok(Some(coroner_capture::Domain {
            uri: libvirt_uri(&self.connect),
            name: name.clone(),
        }))
    }
}

/// `coroner capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The QMP monitor: a unix socket path, or tcp:HOST:PORT.
    #[arg(
        long,
        value_name = "SOCK",
        required_unless_present = "domain",
        conflicts_with = "domain"
    )]
    pub qmp: Option<String>,
    #[command(flatten)]
    pub libvirt: DomainArg,
    /// With --domain: also read `info registers -a` and `info mtree -f` through libvirt's
    /// monitor passthrough. This taints the domain (custom-monitor); the capture records
    /// which path it used.
    #[arg(long)]
    pub monitor: bool,
    /// Dump a libvirt domain's qemu through --qmp anyway. Refused by default: libvirtd 9.0
    /// crashes on the DUMP_COMPLETED event of a dump it did not start; use --domain.
    #[arg(long)]
    pub qmp_under_libvirt: bool,
    /// The container to write (conventionally NAME.core.zst): a file, or s3://BUCKET/KEY.
    #[arg(short, long)]
    pub output: PathBuf,
    /// qemu's log file (found automatically when qemu's stderr is a file on this host).
    #[arg(long, value_name = "FILE")]
    pub qemu_log: Option<PathBuf>,
    /// Freeze a running guest with `stop` first, and leave it stopped.
    #[arg(long, conflicts_with = "allow_running")]
    pub stop: bool,
    /// Dump a running guest (marked live in the metadata).
    #[arg(long)]
    pub allow_running: bool,
    /// If the guest is running, wait up to SECS for it to freeze (recording the events
    /// that say why: GUEST_PANICKED, MEMORY_FAILURE, ...), then capture.
    #[arg(long, value_name = "SECS", conflicts_with_all = ["stop", "allow_running"])]
    pub wait_frozen: Option<u64>,
    /// On failure keep OUTPUT.partial, marked incomplete, instead of deleting it.
    #[arg(long)]
    pub keep_partial: bool,
    /// Seconds to wait for each QMP answer, and for dump progress: a dump that brings no
    /// new byte for this long fails.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub dump_format: DumpFormatArg,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    #[command(flatten)]
    pub format: JsonArg,
    /// Also list every present memory range (text output).
    #[arg(long)]
    pub ranges: bool,
}

/// `coroner dmesg`.
#[derive(Debug, Args)]
pub struct DmesgArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Only records of these levels: emerg, alert, crit, err, warn, notice, info, debug
    /// (or 0-7), comma-separated; LEVEL+ adds every more severe level, +LEVEL every less
    /// severe one (as util-linux dmesg).
    #[arg(long, short = 'l', value_name = "LIST")]
    pub level: Option<coroner_analyze::LogLevels>,
    /// Only records logged at least SECS seconds after boot.
    #[arg(long, value_name = "SECS")]
    pub since_boot: Option<f64>,
    /// Show the caller (task or CPU) of each record, as CONFIG_PRINTK_CALLER does.
    #[arg(long)]
    pub caller: bool,
    /// Show each record's level as <N>.
    #[arg(long)]
    pub show_level: bool,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner modules`.
#[derive(Debug, Args)]
pub struct ModulesArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// Only tasks in these states (letters as ps prints them, e.g. D or RD).
    #[arg(long, value_name = "LETTERS")]
    pub state: Option<String>,
    /// Only this pid (repeatable).
    #[arg(long, value_name = "PID")]
    pub pid: Vec<i32>,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner bt`.
#[derive(Debug, Args)]
pub struct BtArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// Every vCPU and every task.
    #[arg(long)]
    pub all: bool,
    /// This vCPU (repeatable; the default is every vCPU).
    #[arg(long, value_name = "N")]
    pub cpu: Vec<usize>,
    /// This task (repeatable).
    #[arg(long, value_name = "PID")]
    pub pid: Vec<i32>,
    /// Tasks in these states (letters as ps prints them, e.g. D).
    #[arg(long, value_name = "LETTERS")]
    pub state: Option<String>,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner sym`.
#[derive(Debug, Args)]
pub struct SymArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Addresses (hex, with or without 0x) or symbol names.
    #[arg(required = true)]
    pub what: Vec<String>,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Lines of the kernel log's end to show (text output).
    #[arg(long, default_value_t = 20)]
    pub tail: usize,
    /// A task in D this many seconds counts as hung (default: the guest's own
    /// hung_task_timeout_secs, else 120; 0 counts every task in D).
    #[arg(long, value_name = "SECS")]
    pub hung_after: Option<u64>,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner mce`.
#[derive(Debug, Args)]
pub struct MceArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// qemu's log, when the capture does not hold it (its last 256 KiB are read).
    #[arg(long, value_name = "FILE")]
    pub qemu_log: Option<PathBuf>,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner exit`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).multiple(true).args(["file", "qemu_log"]))]
pub struct ExitArgs {
    /// A capture (.core.zst) or a qemu ELF dump (optional with --qemu-log).
    pub file: Option<PathBuf>,
    /// qemu's log (its last 256 KiB are read); default: the log the capture recorded.
    #[arg(long, value_name = "FILE")]
    pub qemu_log: Option<PathBuf>,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The QMP monitor: a unix socket path, or tcp:HOST:PORT.
    #[arg(
        long,
        value_name = "SOCK",
        required_unless_present = "domain",
        conflicts_with = "domain"
    )]
    pub qmp: Option<String>,
    #[command(flatten)]
    pub libvirt: DomainArg,
    /// Where captures are kept: a complete capture of this freeze there (or a watcher's
    /// receipt of its upload, in its --state-dir) makes the answer frozen-captured.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Seconds to wait for qemu's answers.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A QMP monitor to watch, as SOCK or NAME=SOCK (SOCK: a unix socket path or
    /// tcp:HOST:PORT; NAME defaults to the socket's file name). Repeatable.
    #[arg(long, value_name = "[NAME=]SOCK", required_unless_present_any = ["qmp_dir", "domain", "all_domains"])]
    pub qmp: Vec<String>,
    /// A libvirt domain to watch instead, through libvirt's lifecycle events and captured
    /// through libvirt's own dump (no monitor, no taint). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub domain: Vec<String>,
    /// Watch every active domain of the connection instead, following domains that
    /// come and go (listed every second; each followed through its own events).
    #[arg(long, conflicts_with = "domain")]
    pub all_domains: bool,
    /// The libvirt connection for --domain and --all-domains [default: qemu:///system].
    #[arg(long, value_name = "URI")]
    pub connect: Option<String>,
    /// With --domain or --all-domains: also read `info registers -a` and `info mtree -f`
    /// through libvirt's monitor passthrough. This taints the domain (custom-monitor);
    /// the capture records which path it used.
    #[arg(long)]
    pub monitor: bool,
    /// Watch every unix socket in DIR (rescanned every second; NAME from the file name,
    /// without .qmp or .sock). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub qmp_dir: Vec<PathBuf>,
    /// Where captures go: a directory (created 0700 if missing), or s3://BUCKET/PREFIX/,
    /// where each capture is uploaded as PREFIX/HOST/NAME-STAMP-REASON.core.zst as qemu
    /// writes it (needs --state-dir).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX/")]
    pub dir: PathBuf,
    /// With an s3:// --dir: a local directory for the watcher's state files and the
    /// receipts of its uploads (what `coroner status --dir` reads).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// This host's name in the keys of uploaded captures [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// What to capture: frozen run states and memory-failure, comma-separated.
    #[arg(
        long,
        value_name = "TRIGGERS",
        value_delimiter = ',',
        default_value = "internal-error,guest-panicked,io-error,watchdog"
    )]
    pub on: Vec<String>,
    /// Run `sh -c CMD` for each announcement, details in its environment.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Kill a hook still running after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub exec_timeout: u64,
    /// Stop after each guest's first capture (or when its qemu goes away).
    #[arg(long)]
    pub once: bool,
    /// When a capture fails (qemu killed mid-dump, a full disk), keep NAME.partial,
    /// marked incomplete, instead of deleting it: the guest may be gone before anyone
    /// could capture it again.
    #[arg(long)]
    pub keep_partial: bool,
    /// Seconds between `query-status` checks when no event comes.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub poll: f64,
    /// Longest wait between reconnection attempts, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub max_backoff: f64,
    /// Seconds to wait for each QMP answer, and for dump progress: a dump that brings no
    /// new byte for this long fails.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    #[command(flatten)]
    pub compression: CompressionArgs,
    #[command(flatten)]
    pub dump_format: DumpFormatArg,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `coroner report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// The bundle directory to create.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Leave out the slim capture (guest memory); keep only the summary and the JSON.
    #[arg(long)]
    pub redact: bool,
    /// Kernel-log records at the end of the summary and the JSON.
    #[arg(long, default_value_t = 40)]
    pub tail: usize,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner slim`.
#[derive(Debug, Args)]
pub struct SlimArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// The slim container to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner tui`.
#[derive(Debug, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub dump: DumpArg,
    /// Draw every pane once off-screen and print the rows as JSON, instead of the UI.
    #[arg(long)]
    pub json: bool,
    /// Screen size for --json, WIDTHxHEIGHT.
    #[arg(long, default_value = "80x24", value_parser = parse_size)]
    pub size: (u16, u16),
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 80x24")?;
    let w: u16 = w.parse().map_err(|_| format!("bad width {w:?}"))?;
    let h: u16 = h.parse().map_err(|_| format!("bad height {h:?}"))?;
    if !(20..=1000).contains(&w) || !(5..=1000).contains(&h) {
        return Err("width 20-1000, height 5-1000".into());
    }
    Ok((w, h))
}

/// `coroner compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The dump to compress: qemu's ELF or a kdump-compressed file, or s3://BUCKET/KEY.
    pub input: PathBuf,
    /// The container to write (conventionally NAME.core.zst).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub compression: CompressionArgs,
    /// Uncompressed bytes per frame, a multiple of 4096 (default 128 KiB): smaller frames
    /// read faster at random, larger ones compress a little better.
    #[arg(long)]
    pub frame_size: Option<usize>,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `coroner export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The .core.zst container (a file, or s3://BUCKET/KEY).
    pub input: PathBuf,
    /// The ELF file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    #[command(flatten)]
    pub format: JsonArg,
}
