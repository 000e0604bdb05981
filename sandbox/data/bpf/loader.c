// SPDX-License-Identifier: GPL-2.0
/* The eBPF recorder's user side: loads recorder.bpf.o with the run's settings,
 * attaches it, prints READY, then prints every record of the ring as bpftrace
 * printed the same record (sandbox/runner/ebpf_program.py), so one decoder
 * (sandbox/trace/ebpf.py) reads both. Runs as root on the host, outside the
 * candidate's container; SIGINT or SIGTERM drain the ring and detach.
 *
 *   pkgsandbox-bpfrec OBJECT CONFIG NONCE STASH_KEYS RING_BYTES
 *
 * CONFIG: the bytes of struct cfg (cfg.h), packed by sandbox/runner/bpfbuild.py.
 * NONCE: ends every record with a string ("-" for none); STASH_KEYS, RING_BYTES:
 * map sizes. Lost records (a full ring) print "Lost N events", as bpftrace did.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cfg.h"
#include "record.h"

static volatile sig_atomic_t stopping;
static const char *nonce = "";
static int lost_fd = -1;
static __u64 lost_reported;

#define MAX_LINKS 16
static struct bpf_link *links[MAX_LINKS];
static int nlinks;

static void *destroy(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Each link's detach waits out the kernel's grace periods, one link after another when
 * the process exits (about 0.3 s for the five); destroyed from a thread each, at once,
 * they wait them out together. */
static void detach_all(void)
{
	pthread_t t[MAX_LINKS];
	int started[MAX_LINKS] = { 0 };
	for (int i = 0; i < nlinks; i++)
		started[i] = pthread_create(&t[i], NULL, destroy, links[i]) == 0;
	for (int i = 0; i < nlinks; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
		else
			bpf_link__destroy(links[i]);
	}
	nlinks = 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void report_lost(void)
{
	__u32 zero = 0;
	__u64 n = 0;
	if (lost_fd >= 0 && bpf_map_lookup_elem(lost_fd, &zero, &n) == 0 && n > lost_reported) {
		printf("Lost %llu events\n", (unsigned long long)(n - lost_reported));
		lost_reported = n;
	}
}

static void put_bytes(const char *s, __u32 n)
{
	static const char hex[] = "0123456789abcdef";
	for (__u32 i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			putchar(c);
		} else {
			putchar('\\');
			putchar('x');
			putchar(hex[c >> 4]);
			putchar(hex[c & 15]);
		}
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct rec *r = data;
	(void)ctx;
	if (size < sizeof(*r))
		return 0;
	if (r->kind == KIND_SYNC) {
		report_lost(); /* a loss before the marker lands before it */
		printf("\x1eSYNC %lld %llu %s\n", (long long)r->num[0], (unsigned long long)r->num[1], nonce);
		fflush(stdout);
		return 0;
	}
	if (r->kind == KIND_FULL) {
		fputs("\x1e" "FULL\n", stdout);
		return 0;
	}
	putchar(0x1e);
	putchar(r->kind);
	for (int i = 0; i < r->nnum && i < NUMS; i++) {
		if (r->umask & (1ULL << i))
			printf(" %llu", (unsigned long long)r->num[i]);
		else
			printf(" %lld", (long long)r->num[i]);
	}
	if (r->strkind != STR_NONE) {
		__u32 n = r->slen < STRLEN ? r->slen : STRLEN;
		putchar(0x1f);
		if (r->strkind == STR_RAW)
			fwrite(r->str, 1, n, stdout);
		else
			put_bytes(r->str, n);
		if (*nonce) {
			putchar(0x1f);
			fputs(nonce, stdout);
		}
	}
	putchar('\n');
	return 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "pkgsandbox-bpfrec: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s OBJECT CONFIG NONCE STASH_KEYS RING_BYTES\n", argv[0]);
		return 2;
	}
	struct cfg cfg;
	FILE *fh = fopen(argv[2], "rb");
	if (!fh)
		return fail("config");
	size_t got = fread(&cfg, 1, sizeof(cfg), fh);
	int extra = fgetc(fh);
	fclose(fh);
	if (got != sizeof(cfg) || extra != EOF) {
		fprintf(stderr, "pkgsandbox-bpfrec: config is not %zu bytes\n", sizeof(cfg));
		return 2;
	}
	if (strcmp(argv[3], "-") != 0)
		nonce = argv[3];
	static char outbuf[1 << 20];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	libbpf_set_print(quiet);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return fail("open object");
	struct bpf_map *map;
	int have_cfg = 0;
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		if (strstr(name, ".rodata")) {
			size_t sz = 0;
			void *init = bpf_map__initial_value(map, &sz);
			if (!init || sz != sizeof(cfg)) {
				fprintf(stderr, "pkgsandbox-bpfrec: .rodata is %zu bytes, not struct cfg's %zu\n", sz,
					sizeof(cfg));
				return 1;
			}
			memcpy(init, &cfg, sizeof(cfg));
			have_cfg = 1;
		} else if (!strcmp(name, "stash")) {
			bpf_map__set_max_entries(map, (__u32)strtoul(argv[4], NULL, 10));
		} else if (!strcmp(name, "ring")) {
			bpf_map__set_max_entries(map, (__u32)strtoul(argv[5], NULL, 10));
		}
	}
	if (!have_cfg) {
		fprintf(stderr, "pkgsandbox-bpfrec: no .rodata in the object\n");
		return 1;
	}
	struct bpf_program *prog;
	if (!cfg.sync_tgid) {
		prog = bpf_object__find_program_by_name(obj, "on_sync");
		if (prog)
			bpf_program__set_autoload(prog, false);
	}
	if (bpf_object__load(obj))
		return fail("load");
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		struct bpf_link *link = nlinks < MAX_LINKS ? bpf_program__attach(prog) : NULL;
		if (!link) {
			fprintf(stderr, "pkgsandbox-bpfrec: attach %s: %s\n", bpf_program__name(prog),
				nlinks < MAX_LINKS ? strerror(errno) : "too many programs");
			return 1;
		}
		links[nlinks++] = link;
	}
	lost_fd = bpf_object__find_map_fd_by_name(obj, "lost");
	struct ring_buffer *rb =
		ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "ring"), on_record, NULL, NULL);
	if (!rb)
		return fail("ring buffer");
	printf("\x1eREADY%s%s\n", *nonce ? " " : "", nonce);
	fflush(stdout);
	int rc = 0;
	while (!stopping) {
		int n = ring_buffer__poll(rb, 100);
		if (n < 0 && n != -EINTR) {
			/* records after this would be missing unsaid: say the trace lost some */
			fprintf(stderr, "pkgsandbox-bpfrec: ring buffer poll: %s\n", strerror(-n));
			printf("Lost 1 events\n");
			rc = 1;
			break;
		}
		report_lost();
		fflush(stdout);
	}
	ring_buffer__consume(rb);
	report_lost();
	fflush(stdout);
	detach_all();
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return rc;
}
