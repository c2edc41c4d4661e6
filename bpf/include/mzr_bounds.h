/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounds the verifier can see. clang drops a mask it can prove redundant
 * (an index it knows is below n, a byte-swapped 16-bit value), but older
 * verifiers (Linux 6.1) do not track those facts: they see an unbounded
 * register and reject the access. mzr_clamp() hides the value from clang
 * behind an empty asm, so the mask stays in the program.
 */
#ifndef MZR_BOUNDS_H
#define MZR_BOUNDS_H

#define mzr_clamp(x, mask) ({                          \
	__typeof__(x) mzr_clamp_v = (x);               \
	asm volatile("" : "+r"(mzr_clamp_v));         \
	mzr_clamp_v & (mask);                          \
})

#endif /* MZR_BOUNDS_H */
