//! The kit's guest as a libvirt domain, for tests of `--domain`: a transient TCG domain
//! on `qemu:///system` with direct kernel boot of the kit's kernel and initramfs, ACPI
//! and the ISA pvpanic device (so a panic leaves it "crashed (panicked)" with
//! `<on_crash>preserve`), its serial console in a file. Destroyed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::kit::{cache_dir, check, kit_dir, KitError, Result, READY_LINE};

/// The connection the tests use.
pub const URI: &str = "qemu:///system";

/// Starts libvirt's daemons when they do not answer (`samples/kit/libvirt.sh`).
pub fn start_daemons() -> Result<()> {
    let out = Command::new("bash")
        .arg(kit_dir().join("libvirt.sh"))
        .output()
        .map_err(|source| KitError::Io {
            what: "running samples/kit/libvirt.sh".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(KitError::Missing(format!(
            "libvirt: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

static DAEMON: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a test that needs libvirtd up throughout (while a test that restarts it
/// holds [`exclusive`]).
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    DAEMON.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test that restarts libvirtd.
pub fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    DAEMON.write().unwrap_or_else(|e| e.into_inner())
}

/// Restarts libvirtd as a package upgrade does (SIGTERM, then started again); its
/// domains keep running. Hold [`exclusive`].
pub fn restart_libvirtd() -> Result<()> {
    let pid = std::fs::read_to_string("/run/libvirtd.pid")
        .map_err(|source| KitError::Io {
            what: "reading /run/libvirtd.pid".into(),
            source,
        })?
        .trim()
        .to_string();
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(KitError::Missing(format!(
            "kill -TERM {pid} (libvirtd) failed"
        )));
    }
    let start = Instant::now();
    // Gone, or a zombie nobody reaped (no init in a container).
    let running = || {
        std::fs::read_to_string(Path::new("/proc").join(&pid).join("stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
    };
    while running() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(KitError::Timeout(format!(
                "libvirtd {pid} did not exit on SIGTERM"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    start_daemons()
}

/// For end-to-end tests: `true` when the kit and libvirt are usable (daemons started);
/// otherwise says why the test is skipped, except under `CI=true`, where it fails.
pub fn available_or_skip(test: &str) -> bool {
    crate::kit::usable_or_skip(test, check().and_then(|()| start_daemons()))
}

/// Runs `virsh -c URI ARGS`, returning stdout.
pub fn virsh(args: &[&str]) -> Result<String> {
    let out = Command::new("virsh")
        .args(["-q", "-c", URI])
        .args(args)
        .output()
        .map_err(|source| KitError::Io {
            what: "running virsh".into(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(KitError::Missing(format!(
            "virsh {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// How to boot a kit domain.
#[derive(Clone, Debug)]
pub struct LibvirtOptions {
    /// Guest RAM.
    pub mem_mib: u32,
    /// Added to the kernel command line (`coroner.fill=N`, `coroner.run=watchdog`).
    pub append: String,
    /// A QMP socket of coroner's own through `<qemu:commandline>` (it taints the domain:
    /// for the tests and benchmarks of that path only).
    pub qmp: bool,
    /// An i6300esb watchdog with `action='pause'` ("paused (watchdog)").
    pub watchdog: bool,
    /// A virtio disk whose writes fail (a sparse file on a full 64 KiB tmpfs: ENOSPC),
    /// with `error_policy='stop'` ("paused (I/O error)" on `coroner.run=io-error`).
    pub iodisk: bool,
}

impl Default for LibvirtOptions {
    fn default() -> Self {
        Self {
            mem_mib: 512,
            append: String::new(),
            qmp: false,
            watchdog: false,
            iodisk: false,
        }
    }
}

/// A running kit domain.
pub struct LibvirtGuest {
    /// The domain's name.
    pub name: String,
    /// The full file system under the failing disk, unmounted on drop.
    full_fs: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// Maps an I/O error to the kit's, saying what was being done.
fn io(what: &str) -> impl FnOnce(std::io::Error) -> KitError {
    let what = what.to_string();
    move |source| KitError::Io { what, source }
}

impl LibvirtGuest {
    /// A fresh domain (not started yet): a unique name and a directory libvirt's qemu
    /// (libvirt-qemu) can read, holding what the domain boots; `full_fs` when the
    /// domain gets the failing disk.
    fn prepare(prefix: &str, iodisk: bool) -> Result<LibvirtGuest> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(io("creating the domain's directory"))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod the domain's directory"))?;
        let name = format!(
            "coroner-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Ok(LibvirtGuest {
            name,
            full_fs: iodisk.then(|| dir.path().join("full")),
            dir,
        })
    }

    /// Starts the domain `xml` describes (transient: `virsh create`).
    fn create(&self, xml: &str) -> Result<()> {
        let xml_path = self.dir.path().join("domain.xml");
        std::fs::write(&xml_path, xml).map_err(io("writing the domain XML"))?;
        virsh(&["create", &xml_path.display().to_string()]).map(|_| ())
    }
}

/// A 64 KiB tmpfs at `at` holding a sparse 16 MiB `disk.raw` and a file filling the
/// rest: any write to the disk fails with ENOSPC.
fn full_disk(at: &Path) -> Result<PathBuf> {
    std::fs::create_dir(at).map_err(io("creating the disk's mount point"))?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs"])
        .arg(at)
        .output()
        .map_err(io("running mount"))?;
    if !out.status.success() {
        return Err(KitError::Missing(format!(
            "mount a tmpfs for the failing disk (root needed): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let disk = at.join("disk.raw");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(16 << 20))
        .map_err(io("creating the sparse disk"))?;
    let mut fill = std::fs::File::create(at.join("fill")).map_err(io("creating the filler"))?;
    let page = [0xa5u8; 4096];
    loop {
        use std::io::Write;
        if fill.write_all(&page).is_err() {
            break;
        }
    }
    Ok(disk)
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl LibvirtGuest {
    /// Defines and starts a transient domain of `mem_mib` and waits for its ready line.
    pub fn boot(mem_mib: u32) -> Result<LibvirtGuest> {
        Self::boot_with(&LibvirtOptions {
            mem_mib,
            ..LibvirtOptions::default()
        })
    }

    /// [`Self::boot`] with options.
    pub fn boot_with(opts: &LibvirtOptions) -> Result<LibvirtGuest> {
        let (mem_mib, append, qmp) = (opts.mem_mib, opts.append.as_str(), opts.qmp);
        let watchdog = if opts.watchdog {
            "\n    <watchdog model='i6300esb' action='pause'/>"
        } else {
            ""
        };
        // Unmounted on drop, also when the boot fails.
        let guest = LibvirtGuest::prepare("coroner-libvirt-", opts.iodisk)?;
        let dir = guest.dir.path();
        // libvirt's qemu runs as libvirt-qemu: the kernel and initramfs must be where it
        // can reach them (the kit's cache is under root's home).
        let kernel = std::fs::read_dir(cache_dir().join("kernel/boot"))
            .map_err(io("listing the kit's kernel"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .ok_or_else(|| KitError::Missing("no kit kernel: run samples/kit/ensure.sh".into()))?;
        std::fs::copy(&kernel, dir.join("vmlinuz")).map_err(io("copying the kernel"))?;
        std::fs::copy(cache_dir().join("initramfs.cpio.gz"), dir.join("initrd"))
            .map_err(io("copying the initramfs"))?;
        let name = &guest.name;
        let disk = match &guest.full_fs {
            Some(at) => format!(
                "\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw' error_policy='stop'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>",
                full_disk(at)?.display()
            ),
            None => String::new(),
        };
        let d = dir.display();
        let qmp_args = if qmp {
            // qemu runs as libvirt-qemu: its socket goes in a directory it may write.
            use std::os::unix::fs::PermissionsExt;
            let q = dir.join("qmp");
            std::fs::create_dir(&q).map_err(io("creating the QMP directory"))?;
            std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod the QMP directory"))?;
            format!(
                "\n  <qemu:commandline>\n    <qemu:arg value='-qmp'/>\n    <qemu:arg value='unix:{}/tool.sock,server=on,wait=off'/>\n  </qemu:commandline>",
                q.display()
            )
        } else {
            String::new()
        };
        let xml = format!(
            "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>{mem_mib}</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{d}/vmlinuz</kernel>
    <initrd>{d}/initrd</initrd>
    <cmdline>console=ttyS0 panic=0 oops=panic sysrq_always_enabled {append}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='{d}/serial.log'/><target port='0'/></serial>
    <panic model='isa'/>{watchdog}{disk}
    <memballoon model='none'/>
  </devices>{qmp_args}
</domain>
"
        );
        guest.create(&xml)?;
        guest.wait_serial(READY_LINE, Duration::from_secs(180))?;
        Ok(guest)
    }

    /// A bare-metal guest of the kit ([`crate::baremetal`]) as a KVM domain: its boot
    /// sector on a 1 MiB IDE disk, std VGA, 32 MiB. [`Variant::RealMode`] and
    /// [`Variant::Protected32`] end in a KVM emulation failure ("paused (unknown)" in
    /// libvirt, qemu's report in libvirt's log). Needs `/dev/kvm` usable by libvirt's qemu
    /// (`samples/kit/libvirt.sh` gives it to group kvm, as udev does).
    ///
    /// [`Variant::RealMode`]: crate::baremetal::Variant::RealMode
    /// [`Variant::Protected32`]: crate::baremetal::Variant::Protected32
    pub fn boot_bare(variant: crate::baremetal::Variant) -> Result<LibvirtGuest> {
        let guest = LibvirtGuest::prepare("coroner-libvirt-bare-", false)?;
        let name = &guest.name;
        let img = guest.dir.path().join("boot.img");
        let mut image = crate::baremetal::boot_sector(variant).to_vec();
        image.resize(1 << 20, 0);
        std::fs::write(&img, image).map_err(io("writing the boot disk"))?;
        let xml = format!(
            "<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{}'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
",
            img.display()
        );
        guest.create(&xml)?;
        Ok(guest)
    }

    /// The QMP socket [`Self::boot_with`] added, when it did.
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.path().join("qmp/tool.sock")
    }

    /// The domain's directory (serial log, XML).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the guest printed on its serial console.
    pub fn serial_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serial.log")).unwrap_or_default()
    }

    /// libvirt's log of the domain's qemu.
    pub fn log_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/log/libvirt/qemu/{}.log", self.name))
    }

    /// `virsh domstate --reason`.
    pub fn state(&self) -> Result<String> {
        Ok(virsh(&["domstate", "--reason", &self.name])?
            .trim()
            .to_string())
    }

    fn wait_serial(&self, line: &str, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.serial_log().contains(line) {
            if start.elapsed() > limit {
                let log = self.serial_log();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                return Err(KitError::Timeout(format!(
                    "domain {}: no {line:?} on the console in {limit:?}; tail:\n{tail}",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Waits until `virsh domstate --reason` starts with `want`.
    pub fn wait_state(&self, want: &str, limit: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            let s = self.state()?;
            if s.starts_with(want) {
                return Ok(s);
            }
            if start.elapsed() > limit {
                return Err(KitError::Timeout(format!(
                    "domain {}: {s}, not {want}, after {limit:?}",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Panics the guest (sysrq-c) and waits for "crashed (panicked)".
    pub fn panic(&self) -> Result<String> {
        virsh(&["send-key", &self.name, "KEY_LEFTALT", "KEY_SYSRQ", "KEY_C"])?;
        self.wait_state("crashed", Duration::from_secs(120))
    }

    /// Injects an uncorrected, action-required machine check into vCPU 1 through
    /// libvirt's monitor passthrough (it taints the domain), as the QMP kit's
    /// `Scenario::Mce` does, and waits for the guest's panic ("crashed (panicked)").
    pub fn machine_check(&self) -> Result<String> {
        virsh(&[
            "qemu-monitor-command",
            "--hmp",
            &self.name,
            "mce 1 1 0xbd80000000000134 0x7 0x2345000 0x86",
        ])?;
        self.wait_state("crashed", Duration::from_secs(120))
    }

    /// libvirt's own memory-only ELF dump to `path`.
    pub fn dump(&self, path: &Path) -> Result<()> {
        self.dump_as(path, "elf")
    }

    /// libvirt's own memory-only dump to `path` in `format` (`elf`, `kdump-zlib`, ...).
    pub fn dump_as(&self, path: &Path, format: &str) -> Result<()> {
        virsh(&[
            "dump",
            "--memory-only",
            "--format",
            format,
            &self.name,
            &path.display().to_string(),
        ])
        .map(|_| ())
    }
}

impl Drop for LibvirtGuest {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        if let Some(at) = &self.full_fs {
            // qemu has exited (destroy waits for it): the file system is not busy.
            let _ = Command::new("umount").arg(at).status();
        }
    }
}
