//! The command line: clap definitions only. Nothing here opens a file or a socket.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Post-mortem forensics for frozen QEMU/KVM guests.
#[derive(Debug, Parser)]
#[command(name = "coroner", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    unexpected failure
  2    bad command line
  3    input unreadable, truncated or corrupt
  4    output could not be written (permissions, full disk)
  130  interrupted (SIGINT/SIGTERM); no output claims to be complete";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
  coroner compress vm1.elf -o vm1.core.zst --level 1 --threads 4 --json

The output is a seekable zstd stream: `zstd -d vm1.core.zst` gives back the exact ELF.
It is written as OUT.partial (mode 0600) and renamed only when complete.")]
    Compress(CompressArgs),
    /// Write the plain ELF core held by a .core.zst, for crash, drgn or gdb.
    #[command(after_help = "\
Examples:
  coroner export vm1.core.zst -o vm1.elf
  crash vmlinux vm1.elf

The bytes are checked against the sha256 recorded when the container was written.")]
    Export(ExportArgs),
}

/// `coroner inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A qemu ELF dump or a .core.zst container.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also list every present memory range (text output).
    #[arg(long)]
    pub ranges: bool,
}

/// `coroner compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The qemu ELF dump to compress.
    pub input: PathBuf,
    /// The container to write (conventionally NAME.core.zst).
    #[arg(short, long)]
    pub output: PathBuf,
    /// zstd level (1 = fastest; 3 = default; up to 19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Compression threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Uncompressed bytes per frame, a multiple of 4096 (default 1 MiB).
    #[arg(long)]
    pub frame_size: Option<usize>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `coroner export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The .core.zst container.
    pub input: PathBuf,
    /// The ELF file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
