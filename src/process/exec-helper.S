/* The sealed exec helper (see trampoline.rs for why it exists): x86_64 Linux, GNU as, Intel
 * syntax. build.rs assembles it and links it with exec-helper.ld.
 *
 * Command line: MARKER REPORT_FD PROGRAM ARGS... It marks REPORT_FD close-on-exec and execs
 * PROGRAM with ARGS (ARGS[0] is the program's argv[0]) and the environment it got. If that
 * exec fails it writes the errno (4 bytes, little-endian) to REPORT_FD and exits 127. Run any
 * other way it says so on stderr and exits 126.
 *
 * Only rip-relative addressing: the kernel loads it anywhere, with no loader to relocate it
 * (the link refuses an absolute address). No stack frame: it reads the kernel's initial stack,
 * [rsp] argc, [rsp+8] argv[0..argc], NULL, the environment, NULL. */

        .intel_syntax noprefix

        .set SYS_write, 1
        .set SYS_execve, 59
        .set SYS_fcntl, 72
        .set SYS_exit_group, 231
        .set F_SETFD, 2
        .set FD_CLOEXEC, 1

        .text
        .globl _start
_start:
        mov     r13, [rsp]                      /* argc: MARKER, REPORT_FD, PROGRAM at least */
        cmp     r13, 3
        jb      refuse
        mov     rsi, [rsp + 8]                  /* argv[0] must equal marker, NUL included */
        lea     rdi, [rip + marker]
1:      mov     al, [rsi]
        cmp     al, [rdi]
        jne     refuse
        inc     rsi
        inc     rdi
        test    al, al
        jnz     1b

        mov     rsi, [rsp + 16]                 /* r12d = argv[1], a decimal fd */
        xor     r12d, r12d
2:      movzx   eax, byte ptr [rsi]
        test    eax, eax
        jz      3f
        imul    r12d, r12d, 10
        lea     r12d, [r12 + rax - '0']
        inc     rsi
        jmp     2b

3:      mov     edi, r12d                       /* fcntl(fd, F_SETFD, FD_CLOEXEC) */
        mov     esi, F_SETFD
        mov     edx, FD_CLOEXEC
        mov     eax, SYS_fcntl
        syscall

        mov     rdi, [rsp + 24]                 /* execve(argv[2], &argv[3], envp) */
        lea     rsi, [rsp + 32]
        lea     rdx, [rsp + r13 * 8 + 16]       /* envp: past argv[argc], the NULL */
        mov     eax, SYS_execve
        syscall

        neg     eax                             /* it returned -errno */
        mov     [rsp - 8], eax
        mov     edi, r12d                       /* write(fd, &errno, 4) */
        lea     rsi, [rsp - 8]
        mov     edx, 4
        mov     eax, SYS_write
        syscall
        mov     edi, 127
        jmp     4f

refuse:
        mov     edi, 2                          /* write(2, msg, its length) */
        lea     rsi, [rip + msg]
        mov     edx, msg_end - msg
        mov     eax, SYS_write
        syscall
        mov     edi, 126
4:      mov     eax, SYS_exit_group             /* exit_group(edi) */
        syscall

/* trampoline.rs passes the same marker (MARKER) and checks that these bytes are in the ELF. */
marker: .asciz  "nsboot-exec"
msg:    .ascii  "nsboot: not a program to run in the container (it is the runtime's exec helper)\n"
msg_end:

        .section .note.GNU-stack, "", @progbits
