# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistent hashing for scaled endpoints: the Maglev lookup table.

A scaled endpoint's flows are spread over its backends through a ring of M
slots (M prime), each slot naming one backend. A flow's hash picks the slot.
The ring is filled as Maglev does (Eisenbud et al., NSDI 2016): every
backend has its own permutation of the slots, fixed by its key alone
(offset and skip, from two independent hashes of the key), and the backends
take turns claiming their next preferred slot that is still free.

Because a backend's preferences do not depend on the other backends, adding
or removing one moves little more than the slots that must move: the
removed backend's, or the share the new one takes. How much more shrinks
as M grows against the number of backends N: measured here, M about 100 N
moves 2 to 3% of the flows besides those, M about 1000 N under 1%. So
ring_size() gives every backend about 1000 slots, up to the largest ring
(131071 slots, 512 KiB of 4-byte slots), where N above 131 shares it.

Weights: a backend claims a slot on a turn in proportion to its weight
(credit accumulates by its weight and is spent a slot per largest weight),
so its share of the ring follows its weight. Weight 0 drains a backend: it
claims no slot, so no new flow goes to it, while the connection table
keeps its established flows where they are.

The ring depends only on the backends' keys, weights and M, never on the
order they are listed in or on this process: hashes are keyed BLAKE2b, not
Python's hash(). Every host computes the same ring for the same inventory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import struct

# Ring sizes: primes, each about twice the one before. A ring is the
# smallest of them holding MIN_SLOTS_PER_BACKEND slots per backend.
RING_SIZES = (251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)
MIN_SLOTS_PER_BACKEND = 1000
MAX_WEIGHT = 65535


# The shipped function that serves scaled endpoints, and its stage
SCALED_PROGRAM = "scaled"
SCALED_STAGE = "on_xdp_scaled_ep"
# Where a host keeps its rings (bpf/functions/scaled.bpf.c): a pool of
# chunks of CHUNK_SLOTS slots, each ring in consecutive chunks. 16384
# chunks of 256 four-byte slots: 16 MiB, 4 million slots.
CHUNK_SLOTS = 256
POOL_CHUNKS = 16384


class MaglevError(ValueError):
    """The backends given cannot make a ring (said in the message)."""


def ring_size(n_backends):
    """The smallest ring of RING_SIZES with MIN_SLOTS_PER_BACKEND slots per
    backend, or the largest for more backends than that allows."""
    want = max(1, n_backends) * MIN_SLOTS_PER_BACKEND
    for size in RING_SIZES:
        if size >= want:
            return size
    return RING_SIZES[-1]


def endpoint_ring_size(weights):
    """The ring size of a scaled endpoint whose backends have these weights:
    ring_size() of all of them, drained ones included, so that draining
    (weight 0) keeps the ring's size and with it every other backend's
    slots; 0 when every backend is drained (no ring: no new flow)."""
    if not any(weights):
        return 0
    return ring_size(len(weights))


def ring_chunks(weights):
    """The pool chunks the ring of a scaled endpoint with these weights takes."""
    return -(-endpoint_ring_size(weights) // CHUNK_SLOTS)


def _hash(key, salt):
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, salt=salt).digest()
    return struct.unpack("<Q", digest)[0]


def permutation(key, size):
    """(offset, skip) of a backend's permutation of a ring of size slots:
    slot j of its preference list is (offset + j * skip) % size. skip is in
    1..size-1, so with size prime every slot appears once."""
    return _hash(key, b"mzr-maglev-off") % size, _hash(key, b"mzr-maglev-skp") % (size - 1) + 1


def ring(backends, size=None):
    """The ring of a scaled endpoint: a list of size slots (ring_size() of
    the backends by default), each the index in backends of the backend
    that serves the flows hashing there.

    backends: [(key, weight)], key a string unique among them (the backend's
    address in its VPC, say), weight an int 0..MAX_WEIGHT. At least one
    backend must have a weight above 0. Raises MaglevError otherwise."""
    keys = [k for k, dummy in backends]
    if len(set(keys)) != len(keys):
        twice = sorted(k for k in set(keys) if keys.count(k) > 1)
        raise MaglevError("a backend key is listed twice: %s" % ", ".join(twice))
    for key, weight in backends:
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= MAX_WEIGHT:
            raise MaglevError("backend %s: weight %r is not an integer 0..%d" % (key, weight, MAX_WEIGHT))
    size = size or ring_size(len(backends))
    if size not in RING_SIZES:
        raise MaglevError("ring size %r is not one of %s" % (size, ", ".join(str(s) for s in RING_SIZES)))
    live = [(i, key, weight) for i, (key, weight) in enumerate(backends) if weight > 0]
    if not live:
        raise MaglevError("no backend has a weight above 0: a ring needs at least one")
    top = max(weight for dummy, dummy2, weight in live)
    # claimers in key order: the ring must not depend on the listed order
    live.sort(key=lambda t: t[1])
    perms = [permutation(key, size) for dummy, key, dummy2 in live]
    nxt = [0] * len(live)
    credit = [0] * len(live)
    slots = [-1] * size
    filled = 0
    while filled < size:
        for c, (index, dummy, weight) in enumerate(live):
            credit[c] += weight
            while credit[c] >= top and filled < size:
                credit[c] -= top
                offset, skip = perms[c]
                slot = (offset + nxt[c] * skip) % size
                while slots[slot] >= 0:
                    nxt[c] += 1
                    slot = (offset + nxt[c] * skip) % size
                slots[slot] = index
                nxt[c] += 1
                filled += 1
            if filled == size:
                break
    return slots
