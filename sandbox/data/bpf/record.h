/* One record in the ring, shared by recorder.bpf.c and loader.c. The loader prints
 * it as bpftrace printed the same record: "\x1e" KIND NUM... ["\x1f" STRING "\x1f" NONCE]. */
#ifndef PKGSANDBOX_RECORD_H
#define PKGSANDBOX_RECORD_H

#define STR_NONE 0
#define STR_RAW 1   /* %s: the bytes as read */
#define STR_BYTES 2 /* %r: printable ASCII as is, the rest \xNN */
#define KIND_SYNC 1 /* "SYNC cpu nsecs nonce" */
#define KIND_FULL 2 /* "FULL": a thread's arguments did not fit the stash */
#define NUMS 24

struct rec {
	__u8 kind;
	__u8 nnum;
	__u8 strkind;
	__u8 pad;
	__u32 slen;
	__u64 umask; /* bit i: num[i] printed unsigned */
	__s64 num[NUMS];
	char str[STRLEN];
};

#endif
