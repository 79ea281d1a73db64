# Independent reference of the RWKV World tokenizer (spec rwkv7 §11), for tests and the peer of
# `goose bench tokenize`: vocabulary lines parsed with Python's own literal syntax, a trie of
# nested dicts, greedy longest match. Plain Python 3, no dependencies.
#
#   world_tokenizer_ref.py --vocab VOCAB --in TEXT [--out IDS.bin] [--reps N]
#                          [--vocab-bytes ALL.bin]
#
# Encodes the bytes of TEXT, decodes them back (checks the round trip), prints
# `ref_tokens N`, `ref_encode_mb_per_s X` and `ref_decode_mb_per_s Y` (MB = 10^6 bytes, best of
# N repetitions) and writes the ids as little-endian int32 to IDS.bin. ALL.bin: every token's
# bytes concatenated in id order (checks a parser against Python's own literal syntax).
import argparse
import array
import ast
import sys
import time

TOKEN = -1  # key of a trie node's token id (byte keys are 0..255)


def load_vocab(path):
    """Returns {id: bytes}. Line = '<id> <python literal> <byte length>'."""
    table = {}
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                continue
            first, last = line.index(" "), line.rindex(" ")
            token_id = int(line[:first])
            value = ast.literal_eval(line[first + 1:last])
            data = value.encode("utf-8") if isinstance(value, str) else value
            if len(data) != int(line[last + 1:]):
                sys.exit(f"{path}:{number}: length column disagrees with the literal")
            if token_id in table:
                sys.exit(f"{path}:{number}: duplicate id {token_id}")
            table[token_id] = data
    return table


class WorldTokenizer:
    def __init__(self, table):
        self.table = table
        self.root = {}
        for token_id, data in table.items():
            node = self.root
            for byte in data:
                node = node.setdefault(byte, {})
            node[TOKEN] = token_id

    def encode(self, data):
        ids = []
        root, n, pos = self.root, len(data), 0
        while pos < n:
            node, end, best, best_end = root, pos, None, pos
            while end < n:
                node = node.get(data[end])
                if node is None:
                    break
                end += 1
                found = node.get(TOKEN)
                if found is not None:
                    best, best_end = found, end
            if best is None:
                sys.exit(f"no token for byte {data[pos]:#04x} at offset {pos}")
            ids.append(best)
            pos = best_end
        return ids

    def decode(self, ids):
        table = self.table
        return b"".join(table[i] for i in ids if i != 0)


def best_seconds(fn, reps):
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    ap = argparse.ArgumentParser(description="RWKV World tokenizer reference")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--vocab-bytes")
    args = ap.parse_args()
    table = load_vocab(args.vocab)
    if args.vocab_bytes:
        with open(args.vocab_bytes, "wb") as f:
            f.write(b"".join(table[i] for i in sorted(table)))
    tok = WorldTokenizer(table)
    with open(args.inp, "rb") as f:
        data = f.read()
    enc_s, ids = best_seconds(lambda: tok.encode(data), args.reps)
    dec_s, back = best_seconds(lambda: tok.decode(ids), max(args.reps, 3))
    if back != data:
        sys.exit("reference round trip failed")
    if args.out:
        out = array.array("i", ids)
        if sys.byteorder != "little":
            out.byteswap()
        with open(args.out, "wb") as f:
            out.tofile(f)
    mb = len(data) / 1e6
    print(f"ref_tokens {len(ids)}")
    print(f"ref_encode_mb_per_s {mb / enc_s:.4f}")
    print(f"ref_decode_mb_per_s {mb / max(dec_s, 1e-9):.4f}")


if __name__ == "__main__":
    main()
