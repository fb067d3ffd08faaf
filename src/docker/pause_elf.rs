//! The pod holder's program: a static Linux ELF executable of a few hundred bytes, written out
//! byte by byte, so that berth carries it without a registry, a libc or a cross toolchain.
//!
//! What it does, on every architecture:
//!
//! ```text
//! rt_sigprocmask(SIG_BLOCK, {SIGINT, SIGTERM}, NULL, 8)
//! loop { if rt_sigtimedwait({SIGINT, SIGTERM}, NULL, NULL, 8) > 0 { exit_group(0) } }
//! ```
//!
//! Why a blocked-signal wait and not handlers around `pause()`: the holder is PID 1 of its
//! container, and the kernel discards signals sent to a namespace's init whose action is the
//! default one. A *blocked* signal is never discarded (it stays pending whatever its action),
//! so blocking SIGINT and SIGTERM and then waiting for them synchronously makes `docker stop`
//! (SIGTERM) end the holder at once with status 0, instead of after the stop timeout with
//! SIGKILL. No handler runs, so no signal frame, restorer or stack is needed: the program never
//! touches memory except to let the kernel read its 8-byte signal set. Every other signal keeps
//! its default action (ignored while it is PID 1); no file is opened and no child is made.
//!
//! Layout of the file (identical for both architectures, only the code differs):
//!
//! ```text
//! 0x00  ELF header (64 bytes)
//! 0x40  program header 0: PT_LOAD, the whole file, read + execute, at 0x400000
//! 0x78  program header 1: PT_GNU_STACK, read + write (the stack is not executable)
//! 0xb0  code, then the signal set (8 bytes, 8-aligned); entry point = 0x4000b0
//! ```
//!
//! The code is position-independent (RIP-relative on x86_64, `adr` on aarch64), so only the
//! entry point depends on the load address.

/// A CPU architecture berth carries a holder binary for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseArch {
    X86_64,
    Aarch64,
}

impl PauseArch {
    /// Every architecture berth has a binary for; the image tag covers all of them.
    pub(crate) const ALL: [PauseArch; 2] = [PauseArch::X86_64, PauseArch::Aarch64];

    /// The architecture an engine reports in `docker info` (`Architecture`): the kernel's
    /// `uname -m` (`x86_64`, `aarch64`). Go's names (`amd64`, `arm64`) are accepted too, as
    /// some engines and proxies report those. Anything else has no binary: `None`.
    pub(crate) fn from_engine(architecture: &str) -> Option<PauseArch> {
        match architecture {
            "x86_64" | "amd64" => Some(PauseArch::X86_64),
            "aarch64" | "arm64" => Some(PauseArch::Aarch64),
            _ => None,
        }
    }

    /// The `uname -m` name, as in `docker info`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PauseArch::X86_64 => "x86_64",
            PauseArch::Aarch64 => "aarch64",
        }
    }

    /// The complete executable for this architecture.
    pub(crate) fn binary(self) -> Vec<u8> {
        match self {
            PauseArch::X86_64 => elf(EM_X86_64, PAGE_X86_64, &X86_64_CODE),
            PauseArch::Aarch64 => {
                let code: Vec<u8> = AARCH64_CODE.iter().flat_map(|w| w.to_le_bytes()).collect();
                elf(EM_AARCH64, PAGE_AARCH64, &code)
            }
        }
    }
}

/// Where the single segment is mapped: the traditional base of non-PIE executables, far above
/// `vm.mmap_min_addr` (64 KiB) and aligned to any page size.
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;
const PHNUM: u16 = 2;
/// The code starts right after the headers: 64 + 2 * 56 = 176 = 0xb0.
const CODE_OFFSET: usize = EHDR_SIZE as usize + PHNUM as usize * PHDR_SIZE as usize;

/// `e_machine` values from the ELF psABIs.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
/// `p_align` of the load segment: the largest page size the architecture's kernels use
/// (aarch64 kernels may run 64 KiB pages). Offset 0 at 0x400000 satisfies both.
const PAGE_X86_64: u64 = 0x1000;
const PAGE_AARCH64: u64 = 0x1_0000;

/// The set {SIGINT, SIGTERM} as the kernel's 64-bit `sigset_t`: bit `n - 1` for signal `n`;
/// SIGINT = 2 and SIGTERM = 15 on both architectures, so `1 << 1 | 1 << 14` = 0x4002.
const SIGSET: u64 = 1 << (2 - 1) | 1 << (15 - 1);

/// An ELF64 little-endian `ET_EXEC` file: header, the two program headers, then `code` (which
/// must start with the entry point). No section headers: the kernel needs none.
fn elf(machine: u16, page: u64, code: &[u8]) -> Vec<u8> {
    let size = (CODE_OFFSET + code.len()) as u64;
    let mut f = Vec::with_capacity(size as usize);
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1), EV_CURRENT (1), ELFOSABI_SYSV (0),
    // ABI version 0, then 7 bytes of padding.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC, loaded at its own addresses
    f.extend_from_slice(&machine.to_le_bytes()); // e_machine
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version: EV_CURRENT
    f.extend_from_slice(&(BASE + CODE_OFFSET as u64).to_le_bytes()); // e_entry: first code byte
    f.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // e_phoff: right after this header
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags: none defined for either machine
    f.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&PHDR_SIZE.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&PHNUM.to_le_bytes()); // e_phnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize: no section headers
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx: SHN_UNDEF

    // PT_LOAD: map the whole file (headers included, which keeps offset and address congruent
    // modulo the page size) read + execute. Nothing is written, so no writable segment.
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R (4) | PF_X (1)
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr: unused, same as p_vaddr by convention
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz: no .bss
    f.extend_from_slice(&page.to_le_bytes()); // p_align

    // PT_GNU_STACK without PF_X: without it older x86_64 kernels would assume
    // READ_IMPLIES_EXEC and make every readable mapping executable.
    f.extend_from_slice(&0x6474_e551u32.to_le_bytes()); // p_type: PT_GNU_STACK
    f.extend_from_slice(&6u32.to_le_bytes()); // p_flags: PF_R (4) | PF_W (2)
    f.extend_from_slice(&[0; 40]); // offset, vaddr, paddr, filesz, memsz: unused
    f.extend_from_slice(&16u64.to_le_bytes()); // p_align: the ABI's stack alignment

    f.extend_from_slice(code);
    f
}

/// Offsets inside [`X86_64_CODE`], for the jump and the RIP-relative loads (and their tests).
const X86_64_WAIT: usize = 24;
const X86_64_SIGSET: usize = 64;

/// x86_64: `syscall` takes its number in rax and arguments in rdi, rsi, rdx, r10; it clobbers
/// only rax, rcx and r11. Syscall numbers from arch/x86/entry/syscalls/syscall_64.tbl. Each
/// comment gives the offset, the instruction, and why the bytes are what they are.
#[rustfmt::skip]
const X86_64_CODE: [u8; 72] = [
    // 0: lea rsi, [rip + 57]: REX.W, 8D /r, ModRM 00 110 101 (reg rsi, RIP-relative);
    //    disp32 = sigset (64) - end of instruction (7) = 57 = 0x39.
    0x48, 0x8d, 0x35, 0x39, 0x00, 0x00, 0x00,
    // 7: xor edi, edi: 31 /r, ModRM 11 111 111. how = SIG_BLOCK (0).
    0x31, 0xff,
    // 9: xor edx, edx: ModRM 11 010 010. oldset = NULL.
    0x31, 0xd2,
    // 11: mov r10d, 8: REX.B, B8+2 (r10), imm32. sigsetsize = 8 bytes.
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
    // 17: mov eax, 14: B8+0, imm32. rt_sigprocmask.
    0xb8, 0x0e, 0x00, 0x00, 0x00,
    // 22: syscall: 0F 05. Cannot fail with these arguments.
    0x0f, 0x05,
    // 24 (wait): lea rdi, [rip + 33]: ModRM 00 111 101 (reg rdi); disp32 = 64 - 31 = 33.
    //    The arguments are set again on every round, so nothing rests on preserved registers.
    0x48, 0x8d, 0x3d, 0x21, 0x00, 0x00, 0x00,
    // 31: xor esi, esi: ModRM 11 110 110. info = NULL.
    0x31, 0xf6,
    // 33: xor edx, edx. timeout = NULL: wait forever.
    0x31, 0xd2,
    // 35: mov r10d, 8. sigsetsize.
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
    // 41: mov eax, 128: rt_sigtimedwait.
    0xb8, 0x80, 0x00, 0x00, 0x00,
    // 46: syscall. Returns the signal number, or -errno (-EINTR after a stop/continue).
    0x0f, 0x05,
    // 48: test eax, eax: 85 /r, ModRM 11 000 000.
    0x85, 0xc0,
    // 50: jle wait: 7E rel8; rel8 = 24 - 52 = -28 = 0xE4. No signal yet: wait again.
    0x7e, 0xe4,
    // 52: xor edi, edi. Exit status 0.
    0x31, 0xff,
    // 54: mov eax, 231: exit_group.
    0xb8, 0xe7, 0x00, 0x00, 0x00,
    // 59: syscall. Does not return.
    0x0f, 0x05,
    // 61: int3 (CC) padding up to the 8-aligned signal set; never reached.
    0xcc, 0xcc, 0xcc,
    // 64 (sigset): 0x4002 as a little-endian u64.
    0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Offsets inside [`AARCH64_CODE`] in bytes.
const AARCH64_WAIT: usize = 24;
const AARCH64_SIGSET: usize = 72;

/// aarch64: `svc #0` takes its number in x8 and arguments in x0..x5. Syscall numbers from the
/// generic table (include/uapi/asm-generic/unistd.h). Encodings from the Arm ARM (A64):
/// - `movz Xd, #imm16` = 0xD2800000 | imm16 << 5 | d (sf=1, opc=10, hw=0);
/// - `adr Xd, label` = 0x10000000 | immlo << 29 | immhi << 5 | d, offset = immhi:immlo;
/// - `subs xzr, x0, #0` (`cmp x0, #0`) = 0xF1000000 | imm12 << 10 | n << 5 | 31;
/// - `b.cond label` = 0x54000000 | imm19 << 5 | cond, offset = imm19 * 4; LE = 0b1101;
/// - `svc #0` = 0xD4000001.
///
/// Each comment gives the byte offset and the instruction.
#[rustfmt::skip]
const AARCH64_CODE: [u32; 20] = [
    0xd280_0000, //  0: movz x0, #0        how = SIG_BLOCK
    0x1000_0221, //  4: adr x1, sigset     offset 72 - 4 = 68: immhi = 17, immlo = 0
    0xd280_0002, //  8: movz x2, #0        oldset = NULL
    0xd280_0103, // 12: movz x3, #8        sigsetsize (8 << 5 = 0x100)
    0xd280_10e8, // 16: movz x8, #135      rt_sigprocmask (135 << 5 = 0x10e0)
    0xd400_0001, // 20: svc #0
    0x1000_0180, // 24: adr x0, sigset     (wait) offset 72 - 24 = 48: immhi = 12, immlo = 0
    0xd280_0001, // 28: movz x1, #0        info = NULL
    0xd280_0002, // 32: movz x2, #0        timeout = NULL: wait forever
    0xd280_0103, // 36: movz x3, #8        sigsetsize
    0xd280_1128, // 40: movz x8, #137      rt_sigtimedwait (137 << 5 = 0x1120)
    0xd400_0001, // 44: svc #0             x0 = signal number, or -errno
    0xf100_001f, // 48: cmp x0, #0
    0x54ff_ff2d, // 52: b.le wait          offset 24 - 52 = -28: imm19 = -7 = 0x7fff9
    0xd280_0000, // 56: movz x0, #0        exit status 0
    0xd280_0bc8, // 60: movz x8, #94       exit_group (94 << 5 = 0xbc0)
    0xd400_0001, // 64: svc #0             does not return
    0x0000_0000, // 68: udf #0             padding up to the 8-aligned signal set; never reached
    0x0000_4002, // 72: sigset, low word   (little-endian u64 0x4002)
    0x0000_0000, // 76: sigset, high word
];

// The hand-computed offsets, checked when berth compiles: each RIP-relative or `adr` load
// reaches the signal set, each backward branch the wait, and the set holds SIGINT and SIGTERM.
const _: () = {
    let c = &X86_64_CODE;
    // `lea r64, [rip + disp32]` is 7 bytes; the displacement counts from its end.
    assert!(c[0] == 0x48 && c[1] == 0x8d && c[2] == 0x35);
    assert!(7 + i32::from_le_bytes([c[3], c[4], c[5], c[6]]) == X86_64_SIGSET as i32);
    let w = X86_64_WAIT;
    assert!(c[w] == 0x48 && c[w + 1] == 0x8d && c[w + 2] == 0x3d);
    let disp = i32::from_le_bytes([c[w + 3], c[w + 4], c[w + 5], c[w + 6]]);
    assert!(w as i32 + 7 + disp == X86_64_SIGSET as i32);
    // `jle rel8` at 50, counting from its end at 52.
    assert!(c[50] == 0x7e && 52 + c[51] as i8 as i32 == X86_64_WAIT as i32);
    let (s, mut set, mut i) = (X86_64_SIGSET, 0u64, 0);
    while i < 8 {
        set |= (c[s + i] as u64) << (8 * i);
        i += 1;
    }
    assert!(s % 8 == 0 && s + 8 == c.len() && set == SIGSET);

    let a = &AARCH64_CODE;
    assert!(adr_offset(a[1]) == (AARCH64_SIGSET - 4) as i32);
    assert!(adr_offset(a[6]) == (AARCH64_SIGSET - AARCH64_WAIT) as i32);
    // `b.le` at 52: imm19 (bits 5..24) in words, sign-extended.
    assert!(a[13] & 0xff00_001f == 0x5400_000d);
    assert!(52 + (((a[13] << 8) as i32) >> 13) * 4 == AARCH64_WAIT as i32);
    let s = AARCH64_SIGSET;
    assert!(s % 8 == 0 && (a[s / 4] as u64 | (a[s / 4 + 1] as u64) << 32) == SIGSET);
};

/// The byte offset an A64 `adr` word adds to its own address: immhi (bits 5..24) and immlo
/// (bits 29..31), sign-extended.
const fn adr_offset(word: u32) -> i32 {
    assert!(word & 0x9f00_0000 == 0x1000_0000, "not an adr");
    let imm = ((word >> 5) & 0x7_ffff) << 2 | (word >> 29) & 3;
    ((imm << 11) as i32) >> 11
}

#[cfg(test)]
#[path = "pause_elf_tests.rs"]
mod tests;
