/*
 * A stand-in for Windows' bcryptprimitives.dll, for running our Windows
 * builds under Wine 8 only (scripts/test-windows.mjs puts it in the Wine
 * prefix's system32; it is never shipped). Rust's std takes its random bytes
 * (HashMap keys, tempfile names) from ProcessPrng, which Windows 10+ exports
 * from bcryptprimitives.dll and Wine 8 does not: without it every Rust
 * program aborts at start. Invariant: ProcessPrng fills all `len` bytes from
 * the system generator (RtlGenRandom, exported as SystemFunction036) or
 * returns FALSE, as the real one does.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        /* RtlGenRandom takes a ULONG: fill larger requests a piece at a time. */
        ULONG piece = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, piece)) return FALSE;
        data += piece;
        len -= piece;
    }
    return TRUE;
}
