/*
 * virtbench-guest.exe: the agent's line protocol and a few of its
 * workloads, for Windows, so that the wine driver runs a program built
 * for another system's interface (application virtualization).
 *
 * Go's Windows runtime cannot start under Wine 8.0 (it loads
 * bcryptprimitives.dll, which Wine 8.0 lacks), so this twin of the Go
 * agent is C, built by the wine driver with Debian's mingw-w64 cross
 * compiler from this file (embedded in package win32). Each workload does
 * the same work as its Linux twin (guest/workloads.go), so the ratio to
 * native means what it does for the other drivers:
 *
 *   idle            READY and DONE, then wait until stopped
 *   cpu -ops N      SHA-256 over a 64 KiB buffer N times (SHA-NI where the
 *                   CPU has it, as Go's crypto/sha256 uses): cpu.sha256 op/s
 *   syscall -ops N [-time D]
 *                   NtQueryInformationProcess(ProcessBasicInformation): the
 *                   parent's PID asked of the kernel through the NT API, as
 *                   getppid(2) asks it on Linux; under Wine the call is
 *                   served by ntdll's Unix side and the wineserver, which
 *                   is what it measures: syscall.getppid sec/op
 *   fileio -size N [-dir D]
 *                   sequential write of N bytes and FlushFileBuffers:
 *                   fileio.write B/s. The read back is not reported: Win32
 *                   has no call that drops a file's cached pages, so it
 *                   would read the page cache, not the disk, unlike its
 *                   Linux twin.
 *   crash -code N   exit with status N without becoming ready
 *   hang            never become ready
 *
 * Protocol lines are "VIRTBENCH <nonce> KIND {json}\n", the nonce from
 * VIRTBENCH_NONCE (removed from the environment before the workload
 * runs); error text on stderr is quoted, so that no argument it echoes
 * can put a line of its own on the console.
 */
#include <windows.h>
#include <winternl.h>
#include <intrin.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char nonce[17];

/* write_all writes n bytes of s to standard output, unbuffered and in
 * binary (no CR is added to a line's end). */
static void write_all(const char *s, size_t n) {
	HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
	while (n > 0) {
		DWORD w = 0;
		if (!WriteFile(out, s, (DWORD)n, &w, NULL) || w == 0)
			return; /* no reader left: nothing to report to */
		s += w;
		n -= w;
	}
}

/* emit writes one protocol line of kind with the JSON payload json. */
static void emit(const char *kind, const char *json) {
	char line[4096];
	int n;
	if (nonce[0])
		n = snprintf(line, sizeof line, "VIRTBENCH %s %s %s\n", nonce, kind, json);
	else
		n = snprintf(line, sizeof line, "VIRTBENCH %s %s\n", kind, json);
	if (n > 0 && n < (int)sizeof line)
		write_all(line, (size_t)n);
}

/* quote writes s as a JSON string into out (of size cap), escaping quotes,
 * backslashes and control characters. */
static void quote(char *out, size_t cap, const char *s) {
	size_t o = 0;
	out[o++] = '"';
	for (; *s && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = 0;
}

/* fail reports msg as an ERROR line and, quoted, on stderr, and exits with
 * status code. */
static void fail(int code, const char *msg) {
	char q[2048], json[2200];
	quote(q, sizeof q, msg);
	snprintf(json, sizeof json, "{\"msg\":%s}", q);
	emit("ERROR", json);
	fprintf(stderr, "virtbench-guest: %s\n", q);
	exit(code);
}

static void ready(const char *workload) {
	char json[256];
	snprintf(json, sizeof json, "{\"workload\":\"%s\"}", workload);
	emit("READY", json);
}

static void result(const char *name, double value, const char *unit) {
	char json[256];
	snprintf(json, sizeof json, "{\"name\":\"%s\",\"value\":%.17g,\"unit\":\"%s\"}", name, value, unit);
	emit("RESULT", json);
}

/* now returns seconds on a monotonic clock. */
static double now(void) {
	LARGE_INTEGER f, c;
	QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&c);
	return (double)c.QuadPart / (double)f.QuadPart;
}

/* Flags, as the Go agent's flag package reads them: -name value or
 * -name=value (one or two dashes); "--" ends them, and, as in the Go
 * agent, nothing may follow. */
struct flag {
	const char *name;
	const char *value; /* the default, then what was given */
};

static void parse_flags(int argc, char **argv, struct flag *flags, int nflags) {
	char msg[512];
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			if (i + 1 < argc) {
				snprintf(msg, sizeof msg, "unexpected argument %s", argv[i + 1]);
				fail(2, msg);
			}
			return;
		}
		if (a[0] != '-') {
			snprintf(msg, sizeof msg, "unexpected argument %s", a);
			fail(2, msg);
		}
		a += a[1] == '-' ? 2 : 1;
		const char *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		struct flag *f = NULL;
		for (int j = 0; j < nflags; j++)
			if (strlen(flags[j].name) == len && strncmp(flags[j].name, a, len) == 0)
				f = &flags[j];
		if (!f) {
			snprintf(msg, sizeof msg, "flag provided but not defined: -%.*s", (int)len, a);
			fail(2, msg);
		}
		if (eq) {
			f->value = eq + 1;
		} else if (i + 1 < argc) {
			f->value = argv[++i];
		} else {
			snprintf(msg, sizeof msg, "flag needs an argument: -%s", f->name);
			fail(2, msg);
		}
	}
}

/* positive returns flag f as a positive integer, or fails as the Go
 * agent's positiveFlag does. */
static long long positive(const struct flag *f) {
	char *end, msg[512];
	long long v = strtoll(f->value, &end, 0);
	if (*f->value == 0 || *end != 0) {
		snprintf(msg, sizeof msg, "invalid value \"%s\" for flag -%s: not an integer", f->value, f->name);
		fail(2, msg);
	}
	if (v <= 0) {
		snprintf(msg, sizeof msg, "invalid value \"%s\" for flag -%s: must be positive, got %lld", f->value, f->name, v);
		fail(2, msg);
	}
	return v;
}

/* seconds returns flag f, a duration such as 500ms, 2s or 1m, in seconds. */
static double seconds(const struct flag *f) {
	char *end, msg[512];
	double v = strtod(f->value, &end);
	double unit = -1;
	if (strcmp(end, "ns") == 0) unit = 1e-9;
	else if (strcmp(end, "us") == 0 || strcmp(end, "\xc2\xb5s") == 0) unit = 1e-6;
	else if (strcmp(end, "ms") == 0) unit = 1e-3;
	else if (strcmp(end, "s") == 0) unit = 1;
	else if (strcmp(end, "m") == 0) unit = 60;
	else if (strcmp(end, "h") == 0) unit = 3600;
	else if (*end == 0 && v == 0) unit = 0;
	if (end == f->value || unit < 0) {
		snprintf(msg, sizeof msg, "invalid value \"%s\" for flag -%s: not a duration such as 500ms", f->value, f->name);
		fail(2, msg);
	}
	if (v < 0) {
		snprintf(msg, sizeof msg, "invalid value \"%s\" for flag -%s: must not be negative", f->value, f->name);
		fail(2, msg);
	}
	return v * unit;
}

/* SHA-256 (FIPS 180-4), with the SHA extensions where the CPU has them. */
static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* blocks_generic compresses n 64-byte blocks of p into h, one round at a time. */
static void blocks_generic(uint32_t h[8], const uint8_t *p, size_t n) {
	for (; n > 0; n--, p += 64) {
		uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		for (int i = 0; i < 64; i++) {
			uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
			uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
			k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
	}
}

/* blocks_shani compresses n 64-byte blocks of p into h with the SHA
 * extensions: SHA256RNDS2 runs two rounds on the state held as ABEF and
 * CDGH, SHA256MSG1 and MSG2 extend the message schedule four words at a
 * time. */
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t h[8], const uint8_t *p, size_t n) {
	const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i dcba = _mm_loadu_si128((const __m128i *)&h[0]);
	__m128i hgfe = _mm_loadu_si128((const __m128i *)&h[4]);
	__m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);
	__m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
	__m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
	__m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);
	for (; n > 0; n--, p += 64) {
		__m128i abef0 = abef, cdgh0 = cdgh, w[16];
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++) {
			if (i < 4)
				w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), swap);
			else
				w[i] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]), _mm_alignr_epi8(w[i - 1], w[i - 2], 4)), w[i - 1]);
			__m128i m = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m, 0x0e));
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}
	__m128i feba = _mm_shuffle_epi32(abef, 0x1b);
	__m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
	_mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(feba, dchg, 0xf0));
	_mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int have_shani(void) {
	int r[4];
	__cpuidex(r, 7, 0);
	return (r[1] >> 29) & 1; /* EBX bit 29: SHA */
}

/* sha256 writes the digest of p[0:n] to out. */
static void sha256(const uint8_t *p, size_t n, uint8_t out[32], int shani) {
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	void (*blocks)(uint32_t *, const uint8_t *, size_t) = shani ? blocks_shani : blocks_generic;
	size_t full = n / 64;
	blocks(h, p, full);
	uint8_t tail[128] = {0};
	size_t rest = n - 64 * full;
	memcpy(tail, p + 64 * full, rest);
	tail[rest] = 0x80;
	size_t tn = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;
	for (int i = 0; i < 8; i++)
		tail[tn - 1 - i] = (uint8_t)(bits >> (8 * i));
	blocks(h, tail, tn / 64);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

static int work_cpu(int argc, char **argv) {
	struct flag flags[] = {{"ops", "2000"}, {"check", ""}};
	parse_flags(argc, argv, flags, 2);
	long long ops = positive(&flags[0]);
	static uint8_t buf[64 << 10];
	uint8_t sum[32];
	int shani = have_shani();
	if (flags[1].value[0]) {
		/* -check N,N,...: for each N, the digest of N bytes 'a', by the SHA
		 * extensions (where the CPU has them) and by the generic code, one
		 * line each: the agent's own test. */
		static uint8_t in[1 << 12];
		memset(in, 'a', sizeof in);
		for (const char *p = flags[1].value; *p;) {
			long n = strtol(p, (char **)&p, 10);
			if (n < 0 || n > (long)sizeof in)
				fail(2, "-check: a length from 0 to 4096");
			for (int pass = 0; pass < 2; pass++) {
				sha256(in, (size_t)n, sum, pass == 0 && shani);
				for (int i = 0; i < 32; i++)
					printf("%02x", sum[i]);
				printf(pass == 0 ? " " : "\n");
			}
			if (*p == ',')
				p++;
		}
		fflush(stdout);
		return 0;
	}
	ready("cpu");
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)i;
	double start = now();
	for (long long i = 0; i < ops; i++) {
		sha256(buf, sizeof buf, sum, shani);
		buf[0] = sum[0];
	}
	result("cpu.sha256", (double)ops / (now() - start), "op/s");
	return 1;
}

static int work_syscall(int argc, char **argv) {
	struct flag flags[] = {{"ops", "1000000"}, {"time", "0"}};
	parse_flags(argc, argv, flags, 2);
	long long ops = positive(&flags[0]);
	double limit = seconds(&flags[1]);
	ready("syscall");
	PROCESS_BASIC_INFORMATION pbi;
	ULONG len;
	double start = now();
	long long done = 0;
	while (done < ops) {
		long long batch = ops - done < 1024 ? ops - done : 1024;
		for (long long i = 0; i < batch; i++) {
			NTSTATUS st = NtQueryInformationProcess(GetCurrentProcess(), ProcessBasicInformation, &pbi, sizeof pbi, &len);
			if (st != 0) {
				char msg[128];
				snprintf(msg, sizeof msg, "NtQueryInformationProcess: status 0x%08lx", (unsigned long)st);
				fail(1, msg);
			}
		}
		done += batch;
		if (limit > 0 && now() - start >= limit)
			break;
	}
	result("syscall.getppid", (now() - start) / (double)done, "sec/op");
	return 1;
}

static int work_fileio(int argc, char **argv) {
	char tmp[MAX_PATH];
	GetTempPathA(sizeof tmp, tmp);
	struct flag flags[] = {{"size", "67108864"}, {"dir", tmp}};
	parse_flags(argc, argv, flags, 2);
	long long size = positive(&flags[0]);
	ready("fileio");
	char path[MAX_PATH], msg[600];
	if (!GetTempFileNameA(flags[1].value, "vbf", 0, path)) {
		snprintf(msg, sizeof msg, "fileio: a file in %s: error %lu", flags[1].value, GetLastError());
		fail(1, msg);
	}
	HANDLE f = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
	if (f == INVALID_HANDLE_VALUE) {
		snprintf(msg, sizeof msg, "fileio: create %s: error %lu", path, GetLastError());
		fail(1, msg);
	}
	static uint8_t block[1 << 20];
	for (size_t i = 0; i < sizeof block; i++)
		block[i] = (uint8_t)(i * 7);
	double start = now();
	for (long long done = 0; done < size;) {
		DWORD n = (DWORD)(size - done < (long long)sizeof block ? size - done : (long long)sizeof block), w;
		if (!WriteFile(f, block, n, &w, NULL) || w != n) {
			snprintf(msg, sizeof msg, "fileio: write %s: error %lu", path, GetLastError());
			CloseHandle(f);
			fail(1, msg);
		}
		done += n;
	}
	if (!FlushFileBuffers(f)) {
		snprintf(msg, sizeof msg, "fileio: flush %s: error %lu", path, GetLastError());
		CloseHandle(f);
		fail(1, msg);
	}
	result("fileio.write", (double)size / (now() - start), "B/s");
	CloseHandle(f);
	return 1;
}

int main(int argc, char **argv) {
	const char *n = getenv("VIRTBENCH_NONCE");
	if (n) {
		size_t len = strlen(n);
		int ok = len == 0 || len == 16;
		for (size_t i = 0; ok && i < len; i++)
			ok = (n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f');
		if (!ok) {
			fprintf(stderr, "virtbench-guest: \"the nonce (VIRTBENCH_NONCE) is not 16 lowercase hex digits\"\n");
			return 2;
		}
		memcpy(nonce, n, len + 1);
		/* The workload does not inherit the nonce. */
		SetEnvironmentVariableA("VIRTBENCH_NONCE", NULL);
		_putenv("VIRTBENCH_NONCE=");
	}
	if (argc < 2)
		fail(2, "no workload given (idle, cpu, syscall, fileio, crash, hang)");
	const char *w = argv[1];
	int sargc = argc - 2;
	char **sargv = argv + 2;
	int finished = 0;
	if (strcmp(w, "idle") == 0) {
		parse_flags(sargc, sargv, NULL, 0);
		ready("idle");
		finished = 1; /* nothing to do: DONE at once, as the Go agent says it */
	} else if (strcmp(w, "cpu") == 0) {
		finished = work_cpu(sargc, sargv);
		if (!finished)
			return 0;
	} else if (strcmp(w, "syscall") == 0) {
		finished = work_syscall(sargc, sargv);
	} else if (strcmp(w, "fileio") == 0) {
		finished = work_fileio(sargc, sargv);
	} else if (strcmp(w, "crash") == 0) {
		struct flag flags[] = {{"code", "3"}};
		parse_flags(sargc, sargv, flags, 1);
		return atoi(flags[0].value);
	} else if (strcmp(w, "hang") == 0) {
		parse_flags(sargc, sargv, NULL, 0);
	} else {
		char msg[300];
		snprintf(msg, sizeof msg, "unknown workload %s (the Windows agent runs idle, cpu, syscall, fileio, crash, hang)", w);
		fail(2, msg);
	}
	if (finished)
		emit("DONE", "{}");
	/* Until stopped. */
	for (;;)
		Sleep(INFINITE);
}
