use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::*;

fn u16_at(f: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([f[at], f[at + 1]])
}

fn u32_at(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(f[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(f: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(f[at..at + 8].try_into().expect("8 bytes"))
}

// ---- the file format ----------------------------------------------------------------------

#[test]
fn x86_64_elf_header_is_exactly_the_documented_bytes() {
    let f = PauseArch::X86_64.binary();
    #[rustfmt::skip]
    let expected: [u8; 64] = [
        0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // e_ident
        2, 0,                                                       // ET_EXEC
        62, 0,                                                      // EM_X86_64
        1, 0, 0, 0,                                                 // EV_CURRENT
        0xb0, 0, 0x40, 0, 0, 0, 0, 0,                               // e_entry 0x4000b0
        64, 0, 0, 0, 0, 0, 0, 0,                                    // e_phoff
        0, 0, 0, 0, 0, 0, 0, 0,                                     // e_shoff
        0, 0, 0, 0,                                                 // e_flags
        64, 0, 56, 0, 2, 0,                                         // ehsize, phentsize, phnum
        0, 0, 0, 0, 0, 0,                                           // no sections
    ];
    assert_eq!(f[..64], expected);
}

#[test]
fn load_segment_maps_the_whole_file_read_execute_and_the_stack_is_not_executable() {
    for arch in PauseArch::ALL {
        let f = arch.binary();
        let load = 64;
        assert_eq!(u32_at(&f, load), 1, "{arch:?}: PT_LOAD");
        assert_eq!(u32_at(&f, load + 4), 5, "{arch:?}: R+X");
        assert_eq!(u64_at(&f, load + 8), 0, "{arch:?}: from offset 0");
        assert_eq!(u64_at(&f, load + 16), BASE);
        assert_eq!(u64_at(&f, load + 32), f.len() as u64, "{arch:?}: filesz");
        assert_eq!(u64_at(&f, load + 40), f.len() as u64, "{arch:?}: memsz");
        let align = u64_at(&f, load + 48);
        assert_eq!(BASE % align, 0, "{arch:?}: vaddr congruent to offset 0");
        let stack = 64 + 56;
        assert_eq!(u32_at(&f, stack), 0x6474_e551, "{arch:?}: PT_GNU_STACK");
        assert_eq!(u32_at(&f, stack + 4), 6, "{arch:?}: R+W, not X");
        assert_eq!(
            u64_at(&f, 24),
            BASE + CODE_OFFSET as u64,
            "{arch:?}: entry = code"
        );
    }
}

#[test]
fn aarch64_differs_from_x86_64_only_in_machine_alignment_entry_code_and_size() {
    let (x86, arm) = (PauseArch::X86_64.binary(), PauseArch::Aarch64.binary());
    assert_eq!(u16_at(&arm, 18), 183, "EM_AARCH64");
    assert_eq!(u64_at(&arm, 64 + 48), 0x1_0000, "64 KiB page kernels");
    assert_eq!(x86[..18], arm[..18]);
    assert_eq!(x86[20..64], arm[20..64]);
}

#[test]
fn binaries_are_a_few_hundred_bytes() {
    assert_eq!(PauseArch::X86_64.binary().len(), 176 + 72);
    assert_eq!(PauseArch::Aarch64.binary().len(), 176 + 80);
}

// ---- the code -----------------------------------------------------------------------------

/// The A64 encodings, computed here independently of the hand-written words.
fn movz(d: u32, imm: u32) -> u32 {
    0xd280_0000 | imm << 5 | d
}

fn adr(d: u32, from: usize, to: usize) -> u32 {
    let off = (to as i64 - from as i64) as u32 & 0x1f_ffff;
    0x1000_0000 | (off & 3) << 29 | (off >> 2) << 5 | d
}

fn b_le(from: usize, to: usize) -> u32 {
    let imm19 = ((to as i64 - from as i64) / 4) as u32 & 0x7_ffff;
    0x5400_0000 | imm19 << 5 | 0b1101
}

#[test]
fn aarch64_words_match_their_encodings() {
    const SVC0: u32 = 0xd400_0001;
    const CMP_X0_0: u32 = 0xf100_001f;
    let expected = [
        movz(0, 0),
        adr(1, 4, AARCH64_SIGSET),
        movz(2, 0),
        movz(3, 8),
        movz(8, 135),
        SVC0,
        adr(0, AARCH64_WAIT, AARCH64_SIGSET),
        movz(1, 0),
        movz(2, 0),
        movz(3, 8),
        movz(8, 137),
        SVC0,
        CMP_X0_0,
        b_le(52, AARCH64_WAIT),
        movz(0, 0),
        movz(8, 94),
        SVC0,
        0,
        SIGSET as u32,
        (SIGSET >> 32) as u32,
    ];
    assert_eq!(AARCH64_CODE, expected);
    assert_eq!(AARCH64_SIGSET, 18 * 4);
    assert_eq!(AARCH64_SIGSET % 8, 0);
}

#[test]
fn engine_architecture_names_select_a_binary_and_others_none() {
    assert_eq!(PauseArch::from_engine("x86_64"), Some(PauseArch::X86_64));
    assert_eq!(PauseArch::from_engine("amd64"), Some(PauseArch::X86_64));
    assert_eq!(PauseArch::from_engine("aarch64"), Some(PauseArch::Aarch64));
    assert_eq!(PauseArch::from_engine("arm64"), Some(PauseArch::Aarch64));
    assert_eq!(PauseArch::from_engine("armv7l"), None);
    assert_eq!(PauseArch::from_engine(""), None);
    for arch in PauseArch::ALL {
        assert_eq!(PauseArch::from_engine(arch.name()), Some(arch));
    }
}

// ---- running it ---------------------------------------------------------------------------

const PATIENCE: Duration = Duration::from_secs(10);

/// Writes `binary` as an executable file in `dir`.
fn install(dir: &Path, binary: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("pause");
    std::fs::write(&path, binary).expect("write the binary");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Spawns `cmd`, retrying while another thread of the test process that forked during our
/// write still holds the file open (ETXTBSY), a known race of multi-threaded test runners.
fn spawn(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(26) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("spawning {cmd:?}: {e}"),
        }
    }
}

/// Waits until the process sits in the host syscall `nr` (from /proc/<pid>/syscall), i.e. it
/// has blocked its signals and is waiting for them.
fn await_syscall(child: &mut Child, nr: u32) {
    let deadline = Instant::now() + PATIENCE;
    let path = format!("/proc/{}/syscall", child.id());
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("exited before waiting for signals: {status}");
        }
        let now = std::fs::read_to_string(&path).unwrap_or_default();
        if now.split_whitespace().next() == Some(&nr.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never reached syscall {nr}: {now}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{name} {}", child.id());
}

/// Waits for the exit, returning the status and how long it took.
fn await_exit(child: &mut Child) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, started.elapsed());
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("still running {PATIENCE:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A spawned binary, killed if a test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `cmd` until it waits for signals in the host syscall `nr`, and checks that it keeps
/// waiting.
fn start_waiting(cmd: &mut Command, nr: u32) -> Running {
    let mut running = Running(spawn(cmd.stdin(Stdio::null())));
    await_syscall(&mut running.0, nr);
    std::thread::sleep(Duration::from_millis(300));
    let early = running.0.try_wait().expect("try_wait");
    assert!(early.is_none(), "exited on its own: {early:?}");
    running
}

/// Sends `sig` and expects a prompt exit with status 0.
fn exits_zero_promptly_on(mut running: Running, sig: &str) {
    signal(&running.0, sig);
    let (status, took) = await_exit(&mut running.0);
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIG{sig}: {status}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?} to exit");
}

/// Exit status 0 (not death by the signal) shows both halves: the signal was blocked before
/// it came, and rt_sigtimedwait took it. (/proc's SigBlk cannot show the block: while waiting,
/// the kernel moves the mask aside and unblocks the awaited signals.)
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_64_binary_sleeps_until_int_or_term_and_exits_zero() {
    const RT_SIGTIMEDWAIT: u32 = 128;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = install(dir.path(), &PauseArch::X86_64.binary());
    for sig in ["TERM", "INT"] {
        let running = start_waiting(&mut Command::new(&path), RT_SIGTIMEDWAIT);
        exits_zero_promptly_on(running, sig);
    }
}

/// The aarch64 binary under `qemu-aarch64-static` (Debian's qemu-user-static), when installed;
/// otherwise there is nothing to run it on and the test says so.
#[cfg(target_arch = "x86_64")]
#[test]
fn aarch64_binary_under_qemu_sleeps_until_term_and_exits_zero() {
    let qemu = Path::new("/usr/bin/qemu-aarch64-static");
    if !qemu.exists() {
        eprintln!("skipped: {} is not installed", qemu.display());
        return;
    }
    // qemu forwards the guest's rt_sigtimedwait to the host's (number 128 on x86_64).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = install(dir.path(), &PauseArch::Aarch64.binary());
    for sig in ["TERM", "INT"] {
        let running = start_waiting(Command::new(qemu).arg(&path), 128);
        exits_zero_promptly_on(running, sig);
    }
}
