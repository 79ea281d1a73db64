// Restricted pickle interpreter for torch.save'd state dicts. Every read is bounds-checked; the
// value graph is torn down iteratively, so hostile nesting or cycles cannot overflow the stack.
#include "io/torch_pickle.h"

#include <fmt/ranges.h>

#include <cstring>
#include <map>
#include <string_view>
#include <unordered_map>

namespace goose::io {

namespace {

enum class Kind { none, boolean, integer, floating, string, tuple, list, dict, global, storage,
                  tensor };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::none: return "None";
        case Kind::boolean: return "bool";
        case Kind::integer: return "int";
        case Kind::floating: return "float";
        case Kind::string: return "str";
        case Kind::tuple: return "tuple";
        case Kind::list: return "list";
        case Kind::dict: return "dict";
        case Kind::global: return "global";
        case Kind::storage: return "storage";
        case Kind::tensor: return "tensor";
    }
    return "?";
}

struct Value;
using Ref = std::shared_ptr<Value>;

struct Value {
    Kind kind = Kind::none;
    int64_t i = 0;                              // boolean, integer; storage: numel
    double f = 0;                               // floating
    std::string s;                              // string; global "module.name"; storage key
    std::vector<Ref> items;                     // tuple, list
    std::vector<std::pair<Ref, Ref>> entries;   // dict, insertion order
    std::shared_ptr<Storage> storage;           // storage
    DType dtype = DType::u8;                    // storage
    Tensor tensor;                              // tensor
};

struct StorageClass {
    std::string_view name;
    DType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"torch.BFloat16Storage", DType::bf16}, {"torch.HalfStorage", DType::f16},
    {"torch.FloatStorage", DType::f32},     {"torch.DoubleStorage", DType::f64},
    {"torch.IntStorage", DType::i32},       {"torch.LongStorage", DType::i64},
    {"torch.ByteStorage", DType::u8},       {"torch.UntypedStorage", DType::u8},
    {"torch.storage.UntypedStorage", DType::u8},
};
constexpr std::string_view kFunctions[] = {
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter"};

const StorageClass* storage_class(std::string_view name) {
    for (const auto& c : kStorageClasses)
        if (c.name == name) return &c;
    return nullptr;
}

class Machine {
public:
    Machine(const ByteView& b, const StorageLoader& load) : b_(b), load_(load) {}
    ~Machine() { teardown(); }
    Ref run();

    [[noreturn]] void error(const std::string& what) const {
        fail("{} '{}': data.pkl: {} (opcode at offset {})", b_.who, *b_.path, what, op_pos_);
    }

private:
    uint8_t byte() {
        b_.need(pos_, 1, "data.pkl");
        return b_.p[pos_++];
    }
    uint64_t uint_le(int n) {
        b_.need(pos_, uint64_t(n), "data.pkl");
        uint64_t v = 0;
        for (int k = n - 1; k >= 0; --k) v = (v << 8) | b_.p[pos_ + uint64_t(k)];
        pos_ += uint64_t(n);
        return v;
    }
    std::string bytes(uint64_t n) {
        b_.need(pos_, n, "data.pkl");
        std::string s(reinterpret_cast<const char*>(b_.p + pos_), n);
        pos_ += n;
        return s;
    }
    std::string line() {
        std::string s;
        for (uint8_t c = byte(); c != '\n'; c = byte()) s.push_back(char(c));
        return s;
    }
    Ref make(Kind k) {
        auto v = std::make_shared<Value>();
        v->kind = k;
        all_.push_back(v);  // for the iterative teardown
        return v;
    }
    Ref make_int(int64_t i) {
        Ref v = make(Kind::integer);
        v->i = i;
        return v;
    }
    Ref make_str(std::string s) {
        Ref v = make(Kind::string);
        v->s = std::move(s);
        return v;
    }
    void push(Ref v) { stack_.push_back(std::move(v)); }
    Ref pop() {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) error("stack underflow");
        Ref v = std::move(stack_.back());
        stack_.pop_back();
        return v;
    }
    Ref& top() {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) error("stack underflow");
        return stack_.back();
    }
    std::vector<Ref> pop_mark() {
        if (marks_.empty()) error("no MARK on the stack");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<Ref> v(std::make_move_iterator(stack_.begin() + long(m)),
                           std::make_move_iterator(stack_.end()));
        stack_.resize(m);
        return v;
    }
    Ref tuple(std::vector<Ref> items) {
        Ref v = make(Kind::tuple);
        v->items = std::move(items);
        return v;
    }
    void set_items(Ref& dict, std::vector<Ref>& kv) {
        if (dict->kind != Kind::dict)
            error(fmt::format("SETITEM(S) on a {}, not a dict", kind_name(dict->kind)));
        if (kv.size() % 2) error("SETITEMS with an odd number of stack items");
        for (size_t k = 0; k < kv.size(); k += 2) dict->entries.emplace_back(kv[k], kv[k + 1]);
    }
    int64_t as_int(const Ref& v, const char* what) const {
        if (v->kind != Kind::integer && v->kind != Kind::boolean)
            error(fmt::format("{} must be an int, got {}", what, kind_name(v->kind)));
        return v->i;
    }
    const std::string& as_str(const Ref& v, const char* what) const {
        if (v->kind != Kind::string)
            error(fmt::format("{} must be a str, got {}", what, kind_name(v->kind)));
        return v->s;
    }
    std::vector<int64_t> as_ints(const Ref& v, const char* what) const {
        if (v->kind != Kind::tuple && v->kind != Kind::list)
            error(fmt::format("{} must be a tuple of ints, got {}", what, kind_name(v->kind)));
        std::vector<int64_t> r;
        for (const auto& x : v->items) r.push_back(as_int(x, what));
        return r;
    }

    Ref global(const std::string& module, const std::string& name);
    Ref call(const Ref& fn, const Ref& args);
    Ref rebuild_tensor(const std::vector<Ref>& a);
    Ref persistent(const Ref& pid);
    void teardown();

    const ByteView& b_;
    const StorageLoader& load_;
    uint64_t pos_ = 0, op_pos_ = 0;
    std::vector<Ref> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Ref> memo_;
    std::map<std::string, Ref> storages_;
    std::vector<Ref> all_;
};

Ref Machine::global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    bool known = storage_class(full) != nullptr;
    for (auto f : kFunctions) known = known || f == full;
    if (!known) {
        if (module == "torch" && name.ends_with("Storage"))
            error(fmt::format("storage class '{}' has a dtype goose does not support (supported: "
                              "BFloat16, Half, Float, Double, Int, Long, Byte)", full));
        error(fmt::format("unsupported global '{}' (only state dicts of plain tensors can be "
                          "loaded)", full));
    }
    Ref v = make(Kind::global);
    v->s = full;
    return v;
}

Ref Machine::persistent(const Ref& pid) {
    if (pid->kind != Kind::tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::string ||
        pid->items[0]->s != "storage")
        error("unsupported persistent id (expected ('storage', class, key, location, numel))");
    const Ref& cls = pid->items[1];
    const StorageClass* sc = cls->kind == Kind::global ? storage_class(cls->s) : nullptr;
    if (!sc) error("persistent id: the storage class is not a known storage type");
    const std::string& key = as_str(pid->items[2], "storage key");
    const int64_t numel = as_int(pid->items[4], "storage numel");
    if (numel < 0) error(fmt::format("storage '{}' has negative numel {}", key, numel));
    auto it = storages_.find(key);
    if (it != storages_.end()) {
        if (it->second->dtype != sc->dtype || it->second->i < numel)
            error(fmt::format("storage '{}' is used with two different types or sizes", key));
        return it->second;
    }
    Ref v = make(Kind::storage);
    v->s = key;
    v->i = numel;
    v->dtype = sc->dtype;
    v->storage = load_(sc->dtype, std::string(sc->name), key, numel);
    storages_[key] = v;
    return v;
}

Ref Machine::rebuild_tensor(const std::vector<Ref>& a) {
    if (a.size() < 4) error("_rebuild_tensor needs (storage, offset, size, stride, ...)");
    const Ref& st = a[0];
    if (st->kind != Kind::storage)
        error(fmt::format("_rebuild_tensor: first argument is a {}, not a storage",
                          kind_name(st->kind)));
    const int64_t offset = as_int(a[1], "storage_offset");
    const std::vector<int64_t> size = as_ints(a[2], "size");
    const std::vector<int64_t> stride = as_ints(a[3], "stride");
    const std::string where =
        fmt::format("tensor over storage '{}' (size [{}], stride [{}], offset {})", st->s,
                    fmt::join(size, ", "), fmt::join(stride, ", "), offset);
    if (size.size() != stride.size()) error(where + ": size and stride differ in length");
    if (size.size() > size_t(kMaxDims))
        error(fmt::format("{}: more than {} dimensions", where, kMaxDims));
    if (offset < 0) error(where + ": negative offset");
    __int128 numel = 1, last = offset;
    for (size_t d = 0; d < size.size(); ++d) {
        if (size[d] < 0 || stride[d] < 0) error(where + ": negative size or stride");
        if (size[d] > (int64_t(1) << 48) || stride[d] > (int64_t(1) << 48))
            error(where + ": absurd size or stride");
        numel *= size[d];
        if (numel > (__int128(1) << 50)) error(where + ": absurd number of elements");
        if (size[d] > 0) last += __int128(size[d] - 1) * stride[d];
    }
    if (numel > 0 && last >= st->i)
        error(fmt::format("{}: needs {} elements but the storage has {} (storage too small)",
                          where, int64_t(last + 1), st->i));
    if (offset > st->i) error(where + ": offset beyond the storage");
    Ref v = make(Kind::tensor);
    v->tensor = Tensor(st->storage, Shape(size), Strides(stride), offset, st->dtype);
    return v;
}

Ref Machine::call(const Ref& fn, const Ref& args) {
    if (fn->kind != Kind::global) error(fmt::format("REDUCE on a {}", kind_name(fn->kind)));
    if (args->kind != Kind::tuple) error("REDUCE arguments are not a tuple");
    const std::vector<Ref>& a = args->items;
    if (fn->s == "collections.OrderedDict") {
        if (!a.empty()) error("collections.OrderedDict called with arguments");
        return make(Kind::dict);
    }
    if (fn->s == "torch._utils._rebuild_tensor_v2" || fn->s == "torch._utils._rebuild_tensor")
        return rebuild_tensor(a);
    if (fn->s == "torch._utils._rebuild_parameter") {
        if (a.empty() || a[0]->kind != Kind::tensor)
            error("_rebuild_parameter needs a tensor argument");
        return a[0];
    }
    error(fmt::format("'{}' cannot be called", fn->s));
}

Ref Machine::run() {
    while (true) {
        op_pos_ = pos_;
        const uint8_t op = byte();
        switch (op) {
            case 0x80: {  // PROTO
                const uint8_t v = byte();
                if (v > 5) error(fmt::format("pickle protocol {} is not supported", v));
                break;
            }
            case 0x95: uint_le(8); break;  // FRAME (protocol 4): a length hint only
            case '}': push(make(Kind::dict)); break;   // EMPTY_DICT
            case ']': push(make(Kind::list)); break;   // EMPTY_LIST
            case ')': push(tuple({})); break;          // EMPTY_TUPLE
            case '(': marks_.push_back(stack_.size()); break;  // MARK
            case 'X': push(make_str(bytes(uint_le(4)))); break;       // BINUNICODE
            case 0x8c: push(make_str(bytes(uint_le(1)))); break;      // SHORT_BINUNICODE
            case 0x8d: push(make_str(bytes(uint_le(8)))); break;      // BINUNICODE8
            case 'T': {                                               // BINSTRING
                const auto n = int32_t(uint32_t(uint_le(4)));
                if (n < 0) error("negative string length");
                push(make_str(bytes(uint64_t(n))));
                break;
            }
            case 'U': push(make_str(bytes(uint_le(1)))); break;       // SHORT_BINSTRING
            case 'q': memo_[uint_le(1)] = top(); break;               // BINPUT
            case 'r': memo_[uint_le(4)] = top(); break;               // LONG_BINPUT
            case 0x94: {                                              // MEMOIZE
                Ref t = top();
                memo_[memo_.size()] = std::move(t);
                break;
            }
            case 'h': case 'j': {  // BINGET, LONG_BINGET
                const uint64_t k = uint_le(op == 'h' ? 1 : 4);
                auto it = memo_.find(k);
                if (it == memo_.end()) error(fmt::format("memo key {} was never stored", k));
                push(it->second);
                break;
            }
            case 'c': {  // GLOBAL
                std::string module = line();
                std::string name = line();
                push(global(module, name));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                Ref name = pop();
                Ref module = pop();
                push(global(as_str(module, "STACK_GLOBAL module"),
                            as_str(name, "STACK_GLOBAL name")));
                break;
            }
            case 't': push(tuple(pop_mark())); break;  // TUPLE
            case 0x85: case 0x86: case 0x87: {       // TUPLE1/2/3
                std::vector<Ref> items(size_t(op - 0x84));
                for (size_t k = items.size(); k-- > 0;) items[k] = pop();
                push(tuple(std::move(items)));
                break;
            }
            case 'l': {  // LIST
                Ref v = make(Kind::list);
                v->items = pop_mark();
                push(v);
                break;
            }
            case 'd': {  // DICT
                Ref v = make(Kind::dict);
                std::vector<Ref> kv = pop_mark();
                set_items(v, kv);
                push(v);
                break;
            }
            case 'J': push(make_int(int32_t(uint32_t(uint_le(4))))); break;  // BININT
            case 'K': push(make_int(int64_t(uint_le(1)))); break;            // BININT1
            case 'M': push(make_int(int64_t(uint_le(2)))); break;            // BININT2
            case 0x8a: case 0x8b: {                                          // LONG1, LONG4
                const uint64_t n = op == 0x8a ? uint_le(1) : uint_le(4);
                if (n > 8) error(fmt::format("integer of {} bytes is too large", n));
                uint64_t v = n ? uint_le(int(n)) : 0;
                if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
                push(make_int(int64_t(v)));
                break;
            }
            case 'G': {  // BINFLOAT (big-endian)
                b_.need(pos_, 8, "data.pkl");
                uint64_t u = 0;
                for (int k = 0; k < 8; ++k) u = (u << 8) | b_.p[pos_ + uint64_t(k)];
                pos_ += 8;
                Ref v = make(Kind::floating);
                std::memcpy(&v->f, &u, 8);
                push(v);
                break;
            }
            case 'N': push(make(Kind::none)); break;
            case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
                Ref v = make(Kind::boolean);
                v->i = op == 0x88;
                push(v);
                break;
            }
            case 'Q': push(persistent(pop())); break;  // BINPERSID
            case 'R': {                                // REDUCE
                Ref args = pop();
                Ref fn = pop();
                push(call(fn, args));
                break;
            }
            case 's': {  // SETITEM
                std::vector<Ref> kv(2);
                kv[1] = pop();
                kv[0] = pop();
                set_items(top(), kv);
                break;
            }
            case 'u': {  // SETITEMS
                std::vector<Ref> kv = pop_mark();
                set_items(top(), kv);
                break;
            }
            case 'a': {  // APPEND
                Ref v = pop();
                if (top()->kind != Kind::list) error("APPEND to a non-list");
                top()->items.push_back(std::move(v));
                break;
            }
            case 'e': {  // APPENDS
                std::vector<Ref> vs = pop_mark();
                if (top()->kind != Kind::list) error("APPENDS to a non-list");
                for (auto& v : vs) top()->items.push_back(std::move(v));
                break;
            }
            case 'b': {  // BUILD: attribute state (an OrderedDict's _metadata): ignored
                Ref state = pop();
                if (top()->kind != Kind::dict && top()->kind != Kind::tensor)
                    error(fmt::format("BUILD on a {}", kind_name(top()->kind)));
                break;
            }
            case '0': pop(); break;         // POP
            case '1': pop_mark(); break;    // POP_MARK
            case '2': push(top()); break;   // DUP
            case '.': return pop();         // STOP
            default:
                error(fmt::format("unsupported pickle opcode 0x{:02x}", op));
        }
    }
}

void Machine::teardown() {
    // Move every child reference out before a value dies, so no destructor recurses.
    std::vector<Ref> work = std::move(all_);
    stack_.clear();
    memo_.clear();
    storages_.clear();
    for (auto& v : work) {
        v->items.clear();
        v->entries.clear();
    }
    work.clear();
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> unpickle_state_dict(const ByteView& pkl,
                                                                const StorageLoader& load) {
    Machine m(pkl, load);
    Ref root = m.run();
    auto bad = [&](const std::string& what) {
        fail("{} '{}': data.pkl: {}", pkl.who, *pkl.path, what);
    };
    if (root->kind != Kind::dict)
        bad(fmt::format("the pickled object is a {}, not a dict of tensors",
                        kind_name(root->kind)));
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& [k, v] : root->entries) {
        if (k->kind != Kind::string)
            bad(fmt::format("a key of the state dict is a {}, not a str", kind_name(k->kind)));
        if (v->kind != Kind::tensor)
            bad(fmt::format("entry '{}' is a {}, not a tensor (only flat state dicts of tensors "
                            "can be loaded)", k->s, kind_name(v->kind)));
        out.emplace_back(k->s, v->tensor);
    }
    return out;
}

}  // namespace goose::io
