//! Tiny bare-metal guests (a boot sector, no Linux) that make KVM fail to emulate an
//! instruction: `addps xmm0, [mem]` against the VGA window at 0xa0000, which is MMIO
//! (`vga-lowmem`). KVM's emulator has no SSE arithmetic, so qemu prints
//! `KVM internal error. Suberror: 1` and freezes the guest in `internal-error`.
//!
//! Two more run under TCG, for `watch` tests and its benchmark: one panics through
//! pvpanic (`guest-panicked` a second after qemu starts), one powers off through ACPI
//! (`shutdown`, with `-no-shutdown`).
//!
//! The sectors are assembled here byte by byte (no assembler needed on the machine); each
//! instruction is listed beside its bytes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coroner_capture::{Qmp, QmpAddress};

use crate::kit::{KitError, Result};

/// The guest-physical address the failing instruction reads: 0xa000:0x0010, or 0xa0010.
pub const FAULT_GPA: u64 = 0xa0010;

/// Which boot sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Real mode: ES = 0xa000, `addps xmm0, [es:0x10]`.
    RealMode,
    /// 32-bit protected mode with flat segments: `addps xmm0, [esi]`, ESI = 0xa0010.
    Protected32,
    /// Real mode: writes 1 to the pvpanic port 0x505, so qemu (`-action panic=pause`)
    /// freezes the guest in `guest-panicked`. Booted under TCG: no KVM needed.
    Pvpanic,
    /// Real mode: ACPI soft power-off (SLP_EN with sleep type 0 in PIIX4's PM1a control
    /// register, port 0x604), so qemu with `-no-shutdown` freezes the guest in
    /// `shutdown`. Booted under TCG.
    Poweroff,
}

impl Variant {
    /// Offset of the failing instruction in the sector (its address is 0x7c00 + this).
    pub fn fault_offset(self) -> usize {
        let code = self.code();
        match self {
            Variant::Pvpanic => return code.iter().position(|&b| b == 0xee).unwrap_or(0),
            Variant::Poweroff => return code.iter().position(|&b| b == 0xef).unwrap_or(0),
            _ => {}
        }
        code.windows(3)
            .position(|w| w[1..] == [0x58, 0x06] && w[0] == 0x0f)
            .map(|p| if self == Variant::RealMode { p - 1 } else { p })
            .unwrap_or(0)
    }

    /// The failing instruction's bytes.
    pub fn fault_bytes(self) -> &'static [u8] {
        match self {
            Variant::RealMode => &[0x26, 0x0f, 0x58, 0x06, 0x10, 0x00],
            Variant::Protected32 => &[0x0f, 0x58, 0x06],
            Variant::Pvpanic => &[0xee],
            Variant::Poweroff => &[0xef],
        }
    }

    fn code(self) -> Vec<u8> {
        match self {
            Variant::RealMode => real_mode(),
            Variant::Protected32 => protected32(),
            Variant::Pvpanic => pvpanic(),
            Variant::Poweroff => poweroff(),
        }
    }
}

/// Common start: interrupts off, DS = SS = 0, stack below the sector.
const PROLOGUE: &[u8] = &[
    0xfa, // cli
    0x31, 0xc0, // xor ax, ax
    0x8e, 0xd8, // mov ds, ax
    0x8e, 0xd0, // mov ss, ax
    0xbc, 0x00, 0x7c, // mov sp, 0x7c00
];

/// SSE on: CR0.EM = 0, CR0.MP = 1, CR4.OSFXSR | CR4.OSXMMEXCPT (works in 16- and 32-bit
/// code: the CR moves take 32-bit registers in both, the immediates are 8-bit).
const SSE_ON: &[u8] = &[
    0x0f, 0x20, 0xc0, // mov eax, cr0
    0x24, 0xfb, // and al, 0xfb        (EM off)
    0x0c, 0x02, // or al, 0x02         (MP on)
    0x0f, 0x22, 0xc0, // mov cr0, eax
    0x0f, 0x20, 0xe0, // mov eax, cr4
    0x80, 0xcc, 0x06, // or ah, 0x06        (OSFXSR, OSXMMEXCPT)
    0x0f, 0x22, 0xe0, // mov cr4, eax
];

/// Stop here if the instruction ever completes.
const HALT: &[u8] = &[
    0xf4, // hlt
    0xeb, 0xfd, // jmp $-1 (back to hlt)
];

fn real_mode() -> Vec<u8> {
    let mut c = PROLOGUE.to_vec();
    c.extend_from_slice(SSE_ON);
    c.extend_from_slice(&[
        0xb8, 0x00, 0xa0, // mov ax, 0xa000
        0x8e, 0xc0, // mov es, ax
        0x26, 0x0f, 0x58, 0x06, 0x10, 0x00, // addps xmm0, [es:0x0010]
    ]);
    c.extend_from_slice(HALT);
    c
}

fn pvpanic() -> Vec<u8> {
    let mut c = PROLOGUE.to_vec();
    c.extend_from_slice(&[
        0xb0, 0x01, // mov al, 1 (PVPANIC_PANICKED)
        0xba, 0x05, 0x05, // mov dx, 0x505
        0xee, // out dx, al
    ]);
    c.extend_from_slice(HALT);
    c
}

fn poweroff() -> Vec<u8> {
    let mut c = PROLOGUE.to_vec();
    c.extend_from_slice(&[
        0xb8, 0x00, 0x20, // mov ax, 0x2000 (SLP_EN, SLP_TYP 0: soft off)
        0xba, 0x04, 0x06, // mov dx, 0x604 (PM1a_CNT, PM base 0x600 as SeaBIOS sets it)
        0xef, // out dx, ax
    ]);
    c.extend_from_slice(HALT);
    c
}

fn protected32() -> Vec<u8> {
    const BASE: u16 = 0x7c00;
    // Layout: [prologue][lgdt][pe on][far jmp] [32-bit code] [gdt][gdt descriptor]
    let mut c = PROLOGUE.to_vec();
    let lgdt_at = c.len();
    c.extend_from_slice(&[0x0f, 0x01, 0x16, 0, 0]); // lgdt [gdt_desc] (patched below)
    c.extend_from_slice(&[
        0x0f, 0x20, 0xc0, // mov eax, cr0
        0x0c, 0x01, // or al, 1 (PE)
        0x0f, 0x22, 0xc0, // mov cr0, eax
    ]);
    let jmp_at = c.len();
    c.extend_from_slice(&[0xea, 0, 0, 0x08, 0x00]); // jmp 0x08:pm32 (patched below)
    let pm32 = c.len();
    c.extend_from_slice(&[
        0x66, 0xb8, 0x10, 0x00, // mov ax, 0x10
        0x8e, 0xd8, // mov ds, ax
        0x8e, 0xc0, // mov es, ax
        0x8e, 0xd0, // mov ss, ax
        0xbc, 0x00, 0x7c, 0x00, 0x00, // mov esp, 0x7c00
    ]);
    c.extend_from_slice(SSE_ON);
    c.extend_from_slice(&[
        0xbe, 0x10, 0x00, 0x0a, 0x00, // mov esi, 0xa0010
        0x0f, 0x58, 0x06, // addps xmm0, [esi]
    ]);
    c.extend_from_slice(HALT);
    while c.len() % 8 != 0 {
        c.push(0x90);
    }
    let gdt = c.len();
    c.extend_from_slice(&[0; 8]); // null descriptor
    c.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0]); // 0x08: code, flat, 32-bit
    c.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0x92, 0xcf, 0]); // 0x10: data, flat
    let desc = c.len();
    let gdt_addr = u32::from(BASE) + gdt as u32;
    c.extend_from_slice(&23u16.to_le_bytes()); // limit
    c.extend_from_slice(&gdt_addr.to_le_bytes()); // base
    let desc_addr = (BASE + desc as u16).to_le_bytes();
    c[lgdt_at + 3..lgdt_at + 5].copy_from_slice(&desc_addr);
    let target = (BASE + pm32 as u16).to_le_bytes();
    c[jmp_at + 1..jmp_at + 3].copy_from_slice(&target);
    c
}

/// The 512-byte boot sector of `variant`, with the 0x55aa signature.
pub fn boot_sector(variant: Variant) -> [u8; 512] {
    let mut s = [0u8; 512];
    let code = variant.code();
    let n = code.len().min(510);
    s[..n].copy_from_slice(&code[..n]);
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// Why KVM-only tests cannot run here, or `None` when `/dev/kvm` is usable.
pub fn kvm_unavailable() -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm is not usable: {e}")),
    }
}

/// For end-to-end tests: `true` when KVM is usable; otherwise prints why the test is
/// skipped and returns `false`. Under `CI=true` a machine with `/dev/kvm` must run it, so
/// only a missing `/dev/kvm` skips there too (printed).
pub fn kvm_or_skip(test: &str) -> bool {
    match kvm_unavailable() {
        None => true,
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// A bare-metal guest under qemu with KVM, killed on drop.
pub struct BareGuest {
    child: Child,
    dir: tempfile::TempDir,
    /// The harness's QMP connection.
    pub qmp: Qmp,
}

impl BareGuest {
    /// Writes the boot sector and starts qemu (`-accel kvm`, or `tcg` for
    /// [`Variant::Pvpanic`]; std VGA, booting an IDE disk, 32 MiB of RAM).
    pub fn boot(variant: Variant) -> Result<Self> {
        Self::boot_with_mem(variant, 32)
    }

    /// [`BareGuest::boot`] with `mem_mib` MiB of RAM.
    pub fn boot_with_mem(variant: Variant, mem_mib: u32) -> Result<Self> {
        Self::boot_with(variant, mem_mib, &[])
    }

    /// [`BareGuest::boot`] with `mem_mib` MiB of RAM and more qemu arguments (`-S` to start
    /// in `prelaunch`, another `-qmp`, ...).
    pub fn boot_with(variant: Variant, mem_mib: u32, extra_qemu: &[String]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("coroner-bare-")
            .tempdir()
            .map_err(|source| KitError::Io {
                what: "creating the guest's temporary directory".into(),
                source,
            })?;
        let img = dir.path().join("boot.img");
        let mut image = boot_sector(variant).to_vec();
        // A 1 MiB IDE disk. (A floppy boot hangs in the firmware when the host is busy:
        // SeaBIOS waits for a floppy interrupt that never comes under nested KVM.)
        image.resize(1 << 20, 0);
        std::fs::write(&img, image).map_err(|source| KitError::Io {
            what: format!("writing {}", img.display()),
            source,
        })?;
        let qmp_path = dir.path().join("qmp.sock");
        let mut cmd = Command::new("qemu-system-x86_64");
        let accel = match variant {
            Variant::Pvpanic | Variant::Poweroff => "tcg",
            Variant::RealMode | Variant::Protected32 => "kvm",
        };
        match variant {
            Variant::Pvpanic => {
                cmd.args(["-device", "pvpanic", "-action", "panic=pause"]);
            }
            Variant::Poweroff => {
                cmd.arg("-no-shutdown");
            }
            Variant::RealMode | Variant::Protected32 => {}
        }
        cmd.args([
            "-accel",
            accel,
            "-nodefaults",
            "-vga",
            "std",
            "-display",
            "none",
        ])
        .arg("-m")
        .arg(mem_mib.to_string())
        .arg("-no-reboot")
        .arg("-drive")
        .arg(format!("file={},format=raw,if=ide", img.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
        .arg("-qmp")
        .arg(format!(
            "unix:{},server=on,wait=off",
            dir.path().join("tool.sock").display()
        ))
        .args(extra_qemu)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.path().join("qemu.log")).map_err(|source| KitError::Io {
                what: "creating qemu's log".into(),
                source,
            })?,
        );
        crate::kit::kill_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| KitError::Io {
            what: "starting qemu-system-x86_64".into(),
            source,
        })?;
        let start = Instant::now();
        let qmp = loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("qemu.log")).unwrap_or_default();
                return Err(KitError::Exited {
                    status: status.to_string(),
                    tail: log,
                });
            }
            if qmp_path.exists() {
                if let Ok(q) =
                    Qmp::connect(&QmpAddress::Unix(qmp_path.clone()), Duration::from_secs(10))
                {
                    break q;
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(KitError::Timeout(
                    "qemu did not open its QMP socket in 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Self { child, dir, qmp })
    }

    /// Waits until qemu's run state is `state`.
    pub fn wait_for_state(&mut self, state: &str, timeout: Duration) -> Result<()> {
        // Poll gently: the failure takes seconds, and each monitor command takes the lock
        // the vCPU thread needs for its exits.
        match crate::kit::poll_run_state(&mut self.qmp, state, timeout, Duration::from_secs(1))? {
            None => Ok(()),
            Some(now) => Err(KitError::Timeout(format!(
                "run state still {now} after {timeout:?}, not {state}; qemu log:\n{}",
                self.qemu_log()
            ))),
        }
    }

    /// qemu's stderr so far.
    pub fn qemu_log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Where qemu's stderr goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("qemu.log")
    }

    /// A second QMP socket for the tool under test.
    pub fn tool_socket(&self) -> PathBuf {
        self.dir.path().join("tool.sock")
    }

    /// The guest's private temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for BareGuest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sectors_hold_the_failing_instruction() {
        for v in [
            Variant::RealMode,
            Variant::Protected32,
            Variant::Pvpanic,
            Variant::Poweroff,
        ] {
            let s = boot_sector(v);
            assert_eq!(&s[510..], &[0x55, 0xaa]);
            let at = v.fault_offset();
            assert_eq!(&s[at..at + v.fault_bytes().len()], v.fault_bytes(), "{v:?}");
        }
        // The GDT descriptor the protected-mode sector loads points at its GDT.
        let s = boot_sector(Variant::Protected32);
        let desc = u16::from_le_bytes([s[13], s[14]]) as usize - 0x7c00;
        let gdt = u32::from_le_bytes([s[desc + 2], s[desc + 3], s[desc + 4], s[desc + 5]]);
        assert_eq!(u16::from_le_bytes([s[desc], s[desc + 1]]), 23);
        assert_eq!(
            &s[gdt as usize - 0x7c00 + 8..gdt as usize - 0x7c00 + 16],
            &[0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0]
        );
    }
}
