"""Map images on disk: the bytes of every slot of a host's table maps, as
tables.read_images() reads them from a live host, recorded from real maps
by tests/datapath/record_map_images.py and replayed by tests that plan
without maps or root (tests/unit/module_utils/bpf/test_tables.py).

A document is JSON:

    {"note": how it was recorded,
     "states": {name: a desired state, as given to tables.converge()},
     "maps": {map name: {"value_size": bytes, "max_entries": slots,
                         "slots": {"slot number": "its bytes in hex"}}}}

Slots whose bytes are all zero are left out; images() puts them back, so a
replayed image is byte for byte what was read.
"""
import json


def document(images, sizes, note, states):
    """images: {map name: bytes of every slot}; sizes: {map name:
    (value_size, max_entries)} of the same maps."""
    maps = {}
    for name, blob in images.items():
        size, entries = sizes[name]
        if len(blob) != size * entries:
            raise ValueError("%s: %d bytes, not %d slots of %d" % (name, len(blob), entries, size))
        empty = bytes(size)
        slots = {}
        for slot in range(entries):
            raw = bytes(blob[slot * size:(slot + 1) * size])
            if raw != empty:
                slots[str(slot)] = raw.hex()
        maps[name] = {"value_size": size, "max_entries": entries, "slots": slots}
    return {"note": note, "states": states, "maps": maps}


def images(doc):
    """{map name: bytes of every slot} of a document."""
    out = {}
    for name, m in doc["maps"].items():
        size = m["value_size"]
        blob = bytearray(size * m["max_entries"])
        for slot, raw in m["slots"].items():
            value = bytes.fromhex(raw)
            if len(value) != size:
                raise ValueError("%s slot %s: %d bytes, not %d" % (name, slot, len(value), size))
            start = int(slot) * size
            blob[start:start + size] = value
        out[name] = bytes(blob)
    return out


def save(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def load(path):
    with open(path) as f:
        return json.load(f)
