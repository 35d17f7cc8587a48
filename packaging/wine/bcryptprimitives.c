/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running Go
 * programs under Wine 8 (Debian 12), which lacks this DLL. Go >= 1.24 takes
 * its random bytes from ProcessPrng here; this shim answers from advapi32's
 * SystemFunction036 (RtlGenRandom), which Wine has. Never ship it: Windows
 * has the real DLL.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *        bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

typedef BOOLEAN (WINAPI *rtlgenrandom_fn)(PVOID, ULONG);

static rtlgenrandom_fn rtlgenrandom(void)
{
	static rtlgenrandom_fn fn;
	if (!fn) {
		HMODULE h = LoadLibraryA("advapi32.dll");
		if (h)
			fn = (rtlgenrandom_fn)GetProcAddress(h, "SystemFunction036");
	}
	return fn;
}

/* BOOL ProcessPrng(PBYTE pbData, SIZE_T cbData): always TRUE on Windows. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	rtlgenrandom_fn fn = rtlgenrandom();
	if (!fn)
		return FALSE;
	/* RtlGenRandom takes a ULONG length: feed large requests in pieces. */
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!fn(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
