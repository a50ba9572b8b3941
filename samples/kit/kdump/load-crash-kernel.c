// SPDX-License-Identifier: MIT OR Apache-2.0
// load-crash-kernel: loads a capture kernel for kdump with kexec_file_load(2)
// (KEXEC_FILE_ON_CRASH), so a panic boots it and it finds the dead kernel's memory in
// /proc/vmcore. A static stand-in for `kexec -p -s`, whose Debian build needs a dozen
// shared libraries the kit's busybox initramfs does not have.
//
// Usage: load-crash-kernel KERNEL INITRD CMDLINE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef KEXEC_FILE_ON_CRASH
#define KEXEC_FILE_ON_CRASH 0x00000002
#endif

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s KERNEL INITRD CMDLINE\n", argv[0]);
		return 2;
	}
	int kernel = open(argv[1], O_RDONLY | O_CLOEXEC);
	int initrd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (kernel < 0 || initrd < 0) {
		perror("load-crash-kernel: open");
		return 1;
	}
	/* The command line's length counts its terminating NUL. */
	unsigned long len = strlen(argv[3]) + 1;
	if (syscall(SYS_kexec_file_load, kernel, initrd, len, argv[3],
		    (unsigned long)KEXEC_FILE_ON_CRASH) != 0) {
		perror("load-crash-kernel: kexec_file_load");
		return 1;
	}
	return 0;
}
