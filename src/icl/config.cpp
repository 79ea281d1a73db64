// ICL run configurations: YAML -> IclRunConfig (with key-path errors), overrides, emitter, checks.
#include "goose/icl/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "goose/core/error.h"
#include "goose/icl/baselines.h"
#include "goose/icl/eval.h"
#include "goose/io/atomic_file.h"

namespace goose::icl {
namespace {

using YAML::Node;

std::string join_path(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}

std::string describe(const Node& n) {
    if (!n.IsDefined() || n.IsNull()) return "null";
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    return "'" + n.Scalar() + "'";
}

// One mapping of the schema: checks its keys against the valid ones on construction (unknown
// and duplicate keys are errors) and reads typed values, naming the key path on failure.
class MapReader {
  public:
    MapReader(const Node& node, std::string path, std::string source, std::vector<std::string> keys,
              const std::string& keys_label = "")
        : path_(std::move(path)), source_(std::move(source)), keys_(std::move(keys)) {
        if (!node.IsDefined() || node.IsNull()) return;  // absent or null: an empty mapping
        if (!node.IsMap())
            fail("icl config {}: {} must be a mapping (keys: {}), got {}", source_,
                 path_.empty() ? "the document" : path_, fmt::join(keys_, ", "), describe(node));
        node_ = node;
        std::set<std::string> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const std::string key = it->first.IsScalar() ? it->first.Scalar() : describe(it->first);
            if (std::find(keys_.begin(), keys_.end(), key) == keys_.end())
                fail("icl config {}: unknown key '{}'; valid keys {}: {}", source_,
                     join_path(path_, key),
                     keys_label.empty()
                         ? (path_.empty() ? std::string("at the top level") : "under " + path_)
                         : keys_label,
                     keys_.empty() ? std::string("(none)")
                                   : fmt::format("{}", fmt::join(keys_, ", ")));
            if (!seen.insert(key).second)
                fail("icl config {}: key '{}' appears twice", source_, join_path(path_, key));
        }
    }

    // The value under key, or an undefined node when absent.
    Node get(const std::string& key) const {
        if (!node_.IsDefined()) return Node(YAML::NodeType::Undefined);
        const Node& n = node_;
        return n[key];
    }
    bool has(const std::string& key) const {
        const Node v = get(key);
        return v.IsDefined() && !v.IsNull();
    }
    std::string path(const std::string& key) const { return join_path(path_, key); }
    const std::string& source() const { return source_; }

    void require(const std::string& key) const {
        if (!has(key)) fail("icl config {}: missing required key '{}'", source_, path(key));
    }
    MapReader child(const std::string& key, std::vector<std::string> keys, bool required,
                    const std::string& keys_label = "") const {
        if (required) require(key);
        return MapReader(get(key), path(key), source_, std::move(keys), keys_label);
    }

    template <class T>
    void read(const std::string& key, T& out, bool required = false) const {
        if (required) require(key);
        if (!has(key)) return;
        out = convert<T>(get(key), path(key));
    }

    template <class T>
    T convert(const Node& v, const std::string& where) const {
        const char* expected = std::is_same_v<T, bool>          ? "true or false"
                               : std::is_same_v<T, std::string> ? "a string"
                               : std::is_integral_v<T>          ? "an integer"
                                                                : "a number";
        if (!v.IsScalar())
            fail("icl config {}: {} must be {}, got {}", source_, where, expected, describe(v));
        if constexpr (std::is_same_v<T, std::string>) {
            return v.Scalar();
        } else {
            try {
                return v.as<T>();
            } catch (const YAML::Exception&) {
                fail("icl config {}: {} must be {}, got {}", source_, where, expected, describe(v));
            }
        }
    }

    // A list of strings; a single scalar counts as a one-element list.
    std::vector<std::string> strings(const std::string& key) const {
        const Node v = get(key);
        if (v.IsScalar()) return {v.Scalar()};
        if (!v.IsSequence())
            fail("icl config {}: {} must be a list of names, got {}", source_, path(key),
                 describe(v));
        std::vector<std::string> out;
        for (size_t i = 0; i < v.size(); ++i)
            out.push_back(convert<std::string>(v[i], fmt::format("{}[{}]", path(key), i)));
        return out;
    }

  private:
    Node node_{YAML::NodeType::Undefined};
    std::string path_, source_;
    std::vector<std::string> keys_;
};

const std::vector<std::string> kModelKeys = {"family",  "n_dims", "n_positions", "n_embd",
                                             "n_layer", "n_head", "head_size"};
const std::vector<std::string> kTrainingKeys = {
    "task",         "task_kwargs",           "batch_size",       "learning_rate",   "optimizer",
    "weight_decay", "train_steps",           "save_every_steps", "log_every_steps", "seed",
    "num_tasks",    "num_training_examples", "curriculum"};
const std::vector<std::string> kScheduleKeys = {"start", "end", "inc", "interval"};
const std::vector<std::string> kEvalKeys = {"prompts", "baselines", "settings"};

void read_schedule(const MapReader& curriculum, const std::string& name, CurriculumSchedule& s) {
    const MapReader r = curriculum.child(name, kScheduleKeys, true);
    r.read("start", s.start, true);
    r.read("end", s.end, true);
    r.read("inc", s.inc, true);
    r.read("interval", s.interval, true);
}

// Null or absent reads as `unset`.
int64_t read_optional_count(const MapReader& r, const std::string& key, int64_t unset) {
    int64_t v = unset;
    r.read(key, v);
    return v;
}

IclRunConfig from_yaml(const Node& root, const std::string& source) {
    IclRunConfig c;
    TrainConfig& t = c.train;
    const MapReader top(root, "", source, {"model", "training", "eval"});

    const MapReader m = top.child("model", kModelKeys, true);
    m.read("family", t.model.family, true);
    m.read("n_dims", t.model.n_dims, true);
    m.read("n_positions", t.model.n_positions, true);
    m.read("n_embd", t.model.n_embd);
    m.read("n_layer", t.model.n_layer);
    m.read("n_head", t.model.n_head);
    m.read("head_size", t.model.head_size);

    const MapReader tr = top.child("training", kTrainingKeys, true);
    tr.read("task", t.task.name, true);
    const auto& names = task_names();
    if (std::find(names.begin(), names.end(), t.task.name) == names.end())
        fail("icl config {}: training.task: unknown task '{}'; valid tasks: {}", source,
             t.task.name, fmt::join(names, ", "));
    const MapReader kw =
        tr.child("task_kwargs", task_kwarg_names(t.task.name), false, "for task " + t.task.name);
    kw.read("scale", t.task.scale);
    kw.read("sparsity", t.task.sparsity);
    t.task.valid_coords = read_optional_count(kw, "valid_coords", -1);
    kw.read("noise_std", t.task.noise_std);
    kw.read("renormalize_ys", t.task.renormalize_ys);
    kw.read("hidden_layer_size", t.task.hidden);
    kw.read("depth", t.task.depth);
    tr.read("batch_size", t.batch_size);
    tr.read("learning_rate", t.learning_rate);
    tr.read("optimizer", t.optimizer);
    tr.read("weight_decay", t.weight_decay);
    tr.read("train_steps", t.train_steps, true);
    tr.read("save_every_steps", t.save_every_steps);
    tr.read("log_every_steps", t.log_every_steps);
    if (tr.has("seed")) {  // unsigned: read as text first so "-1" is an error, not 2^64 - 1
        const std::string s = tr.convert<std::string>(tr.get("seed"), tr.path("seed"));
        if (!s.empty() && s[0] == '-')
            fail("icl config {}: training.seed must be a non-negative integer, got '{}'", source,
                 s);
        t.seed = tr.convert<uint64_t>(tr.get("seed"), tr.path("seed"));
    }
    t.num_tasks = read_optional_count(tr, "num_tasks", 0);
    t.num_training_examples = read_optional_count(tr, "num_training_examples", 0);
    const MapReader cur = tr.child("curriculum", {"dims", "points"}, true);
    read_schedule(cur, "dims", t.dims);
    read_schedule(cur, "points", t.points);

    const MapReader ev = top.child("eval", kEvalKeys, false);
    ev.read("prompts", c.eval_prompts);
    if (ev.has("baselines")) {
        c.baselines = ev.strings("baselines");
        if (c.baselines == std::vector<std::string>{"default"}) c.baselines.clear();
    }
    if (ev.has("settings")) {
        c.settings = ev.strings("settings");
        if (c.settings == std::vector<std::string>{"all"}) c.settings.clear();
    }
    return c;
}

void apply_override(Node& root, const std::string& assignment, const std::string& source) {
    const auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == assignment.size())
        fail("icl config {}: --set '{}': expected KEY.PATH=VALUE, e.g. training.train_steps=1000",
             source, assignment);
    const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        const size_t dot = key.find('.', start);
        parts.push_back(key.substr(start, dot - start));
        if (parts.back().empty())
            fail("icl config {}: --set '{}': empty component in the key path '{}'", source,
                 assignment, key);
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    Node value;
    try {
        value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        fail("icl config {}: --set '{}': the value is not valid YAML: {}", source, assignment,
             e.what());
    }
    Node cur;
    cur.reset(root);
    std::string walked;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        walked = join_path(walked, parts[i]);
        if (!cur[parts[i]].IsDefined() || cur[parts[i]].IsNull())
            cur[parts[i]] = Node(YAML::NodeType::Map);
        else if (!cur[parts[i]].IsMap())
            fail("icl config {}: --set '{}': {} is {}, not a mapping", source, assignment, walked,
                 describe(cur[parts[i]]));
        Node next = cur[parts[i]];
        cur.reset(next);
    }
    cur[parts.back()] = value;
}

// Leaves of the emitted YAML as (dotted key, value text), in document order.
void flatten(const Node& n, const std::string& path,
             std::vector<std::pair<std::string, std::string>>& out) {
    if (n.IsMap()) {
        for (auto it = n.begin(); it != n.end(); ++it)
            flatten(it->second, join_path(path, it->first.Scalar()), out);
    } else {
        YAML::Emitter e;
        e << YAML::Flow << n;
        out.emplace_back(path, e.c_str());
    }
}

std::string number(double v) {
    return fmt::format("{}", v);
}

}  // namespace

std::vector<std::string> task_kwarg_names(const std::string& task) {
    if (task == "linear_regression" || task == "quadratic_regression") return {"scale"};
    if (task == "sparse_linear_regression") return {"sparsity", "valid_coords", "scale"};
    if (task == "noisy_linear_regression") return {"noise_std", "renormalize_ys", "scale"};
    if (task == "linear_classification") return {};
    if (task == "relu_2nn_regression") return {"hidden_layer_size", "scale"};
    if (task == "decision_tree") return {"depth"};
    fail("icl config: unknown task '{}'; valid tasks: {}", task, fmt::join(task_names(), ", "));
}

IclRunConfig parse_icl_config(const std::string& yaml_text, const std::string& source,
                              const std::vector<std::string>& overrides) {
    Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
        fail("icl config {}: not valid YAML: {}", source, e.what());
    }
    if (!root.IsDefined() || root.IsNull()) root = Node(YAML::NodeType::Map);
    if (!root.IsMap())
        fail(
            "icl config {}: the document must be a mapping with keys model, training, eval; "
            "got {}",
            source, describe(root));
    for (const auto& o : overrides) apply_override(root, o, source);
    IclRunConfig c = from_yaml(root, source);
    validate_icl_config(c, source);
    return c;
}

IclRunConfig load_icl_config(const std::string& path, const std::vector<std::string>& overrides) {
    std::string text;
    try {
        text = io::read_file(path);
    } catch (const Error& e) {
        fail("icl config {}: {}", path, e.what());
    }
    return parse_icl_config(text, path, overrides);
}

std::string icl_config_yaml(const IclRunConfig& c) {
    const TrainConfig& t = c.train;
    const ModelConfig& m = t.model;
    YAML::Emitter e;
    e << YAML::Comment("goose icl run configuration (schema: include/goose/icl/config.h)");
    e << YAML::BeginMap;
    e << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "family" << YAML::Value << m.family;
    e << YAML::Key << "n_dims" << YAML::Value << m.n_dims;
    e << YAML::Key << "n_positions" << YAML::Value << m.n_positions;
    e << YAML::Key << "n_embd" << YAML::Value << m.n_embd;
    e << YAML::Key << "n_layer" << YAML::Value << m.n_layer;
    e << YAML::Key << "n_head" << YAML::Value << m.n_head;
    e << YAML::Key << "head_size" << YAML::Value << m.head_size;
    e << YAML::EndMap;

    e << YAML::Key << "training" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "task" << YAML::Value << t.task.name;
    e << YAML::Key << "task_kwargs" << YAML::Value << YAML::BeginMap;
    for (const std::string& k : task_kwarg_names(t.task.name)) {
        e << YAML::Key << k << YAML::Value;
        if (k == "scale")
            e << number(t.task.scale);
        else if (k == "sparsity")
            e << t.task.sparsity;
        else if (k == "valid_coords" && t.task.valid_coords < 0)
            e << YAML::Null;
        else if (k == "valid_coords")
            e << t.task.valid_coords;
        else if (k == "noise_std")
            e << number(t.task.noise_std);
        else if (k == "renormalize_ys")
            e << t.task.renormalize_ys;
        else if (k == "hidden_layer_size")
            e << t.task.hidden;
        else if (k == "depth")
            e << t.task.depth;
    }
    e << YAML::EndMap;
    e << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
    e << YAML::Key << "learning_rate" << YAML::Value << number(t.learning_rate);
    e << YAML::Key << "optimizer" << YAML::Value << t.optimizer;
    e << YAML::Key << "weight_decay" << YAML::Value << number(t.weight_decay);
    e << YAML::Key << "train_steps" << YAML::Value << t.train_steps;
    e << YAML::Key << "save_every_steps" << YAML::Value << t.save_every_steps;
    e << YAML::Key << "log_every_steps" << YAML::Value << t.log_every_steps;
    e << YAML::Key << "seed" << YAML::Value << t.seed;
    e << YAML::Key << "num_tasks" << YAML::Value << t.num_tasks;
    e << YAML::Key << "num_training_examples" << YAML::Value << t.num_training_examples;
    e << YAML::Key << "curriculum" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, s] : {std::pair{"dims", t.dims}, std::pair{"points", t.points}}) {
        e << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap;
        e << YAML::Key << "start" << YAML::Value << s.start;
        e << YAML::Key << "end" << YAML::Value << s.end;
        e << YAML::Key << "inc" << YAML::Value << s.inc;
        e << YAML::Key << "interval" << YAML::Value << s.interval;
        e << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::EndMap;

    e << YAML::Key << "eval" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "prompts" << YAML::Value << c.eval_prompts;
    e << YAML::Key << "baselines" << YAML::Value;
    if (c.baselines.empty())
        e << "default";
    else
        e << YAML::Flow << c.baselines;
    e << YAML::Key << "settings" << YAML::Value;
    if (c.settings.empty())
        e << "all";
    else
        e << YAML::Flow << c.settings;
    e << YAML::EndMap;
    e << YAML::EndMap;
    GOOSE_ASSERT(e.good(), "icl_config_yaml: emitter error {}", e.GetLastError());
    return std::string(e.c_str()) + "\n";
}

void validate_icl_config(const IclRunConfig& c, const std::string& source) {
    const TrainConfig& t = c.train;
    const ModelConfig& m = t.model;
    auto bad = [&](const std::string& msg) { fail("icl config {}: {}", source, msg); };
    auto at_least = [&](const std::string& key, int64_t v, int64_t lo) {
        if (v < lo) bad(fmt::format("{} must be >= {}, got {}", key, lo, v));
    };

    const auto& families = model_families();
    if (std::find(families.begin(), families.end(), m.family) == families.end())
        bad(fmt::format("model.family: unknown family '{}'; valid families: {}", m.family,
                        fmt::join(families, ", ")));
    at_least("model.n_dims", m.n_dims, 1);
    at_least("model.n_positions", m.n_positions, 1);
    at_least("model.n_embd", m.n_embd, 1);
    at_least("model.n_layer", m.n_layer, 1);
    if (m.family == "transformer") {
        at_least("model.n_head", m.n_head, 1);
        if (m.n_embd % m.n_head != 0)
            bad(fmt::format("model.n_embd ({}) must be a multiple of model.n_head ({})", m.n_embd,
                            m.n_head));
    }
    if (m.family == "rwkv7") {
        at_least("model.head_size", m.head_size, 1);
        if (m.n_embd % m.head_size != 0)
            bad(fmt::format("model.n_embd ({}) must be a multiple of model.head_size ({})",
                            m.n_embd, m.head_size));
    }

    const auto& tasks = task_names();
    if (std::find(tasks.begin(), tasks.end(), t.task.name) == tasks.end())
        bad(fmt::format("training.task: unknown task '{}'; valid tasks: {}", t.task.name,
                        fmt::join(tasks, ", ")));
    const std::string& task = t.task.name;
    if (task == "sparse_linear_regression") {
        const int64_t k = t.task.sparsity;
        if (k < 1 || k > m.n_dims)
            bad(fmt::format("training.task_kwargs.sparsity ({}) must be in [1, model.n_dims = {}]",
                            k, m.n_dims));
        if (t.task.valid_coords != -1 &&
            (t.task.valid_coords < k || t.task.valid_coords > m.n_dims))
            bad(
                fmt::format("training.task_kwargs.valid_coords ({}) must be null or in "
                            "[sparsity = {}, model.n_dims = {}]",
                            t.task.valid_coords, k, m.n_dims));
        if (t.task.valid_coords == -1 && k > t.dims.start)
            bad(
                fmt::format("training.task_kwargs.sparsity ({}) exceeds "
                            "training.curriculum.dims.start ({}): the support is drawn among the "
                            "active dimensions",
                            k, t.dims.start));
    }
    if (task == "relu_2nn_regression")
        at_least("training.task_kwargs.hidden_layer_size", t.task.hidden, 1);
    if (task == "decision_tree" && (t.task.depth < 1 || t.task.depth > 24))
        bad(fmt::format("training.task_kwargs.depth must be in [1, 24], got {}", t.task.depth));
    if (task == "noisy_linear_regression" && !(t.task.noise_std >= 0))
        bad(fmt::format("training.task_kwargs.noise_std must be >= 0, got {}", t.task.noise_std));
    if (!std::isfinite(t.task.scale))
        bad(fmt::format("training.task_kwargs.scale must be finite, got {}", t.task.scale));

    at_least("training.batch_size", t.batch_size, 1);
    if (!(t.learning_rate > 0) || !std::isfinite(t.learning_rate))
        bad(fmt::format("training.learning_rate must be > 0, got {}", t.learning_rate));
    if (t.optimizer != "adam" && t.optimizer != "adamw")
        bad(fmt::format("training.optimizer: unknown optimizer '{}'; valid: adam, adamw",
                        t.optimizer));
    if (!(t.weight_decay >= 0) || !std::isfinite(t.weight_decay))
        bad(fmt::format("training.weight_decay must be >= 0, got {}", t.weight_decay));
    at_least("training.train_steps", t.train_steps, 1);
    at_least("training.save_every_steps", t.save_every_steps, 1);
    at_least("training.log_every_steps", t.log_every_steps, 1);
    at_least("training.num_tasks", t.num_tasks, 0);
    at_least("training.num_training_examples", t.num_training_examples, 0);
    if (t.num_tasks > 0 && t.num_training_examples > 0)
        bad("training.num_tasks and training.num_training_examples cannot both be set");
    if (t.num_training_examples > 0 && t.num_training_examples < t.batch_size)
        bad(
            fmt::format("training.num_training_examples ({}) must be >= training.batch_size ({}): "
                        "each step draws batch_size distinct examples",
                        t.num_training_examples, t.batch_size));

    for (const auto& [name, s] : {std::pair{"dims", t.dims}, std::pair{"points", t.points}}) {
        const std::string p = std::string("training.curriculum.") + name;
        at_least(p + ".start", s.start, 1);
        at_least(p + ".inc", s.inc, 0);
        at_least(p + ".interval", s.interval, 1);
        if (s.end < s.start)
            bad(fmt::format("{}.end ({}) must be >= {}.start ({})", p, s.end, p, s.start));
    }
    if (t.dims.end > m.n_dims)
        bad(fmt::format("training.curriculum.dims.end ({}) exceeds model.n_dims ({})", t.dims.end,
                        m.n_dims));
    if (t.points.end > m.n_positions)
        bad(fmt::format("training.curriculum.points.end ({}) exceeds model.n_positions ({})",
                        t.points.end, m.n_positions));

    at_least("eval.prompts", c.eval_prompts, 1);
    std::set<std::string> seen;
    for (const auto& b : c.baselines) {
        try {
            (void)make_baseline(b);
        } catch (const Error& e) {
            bad(fmt::format("eval.baselines: {}", e.what()));
        }
        if (!seen.insert(b).second) bad(fmt::format("eval.baselines: '{}' appears twice", b));
    }
    const std::vector<std::string> valid = eval_settings(t.task);
    seen.clear();
    for (const auto& s : c.settings) {
        if (std::find(valid.begin(), valid.end(), s) == valid.end())
            bad(
                fmt::format("eval.settings: unknown setting '{}' for task {}; valid settings: {} "
                            "(or all)",
                            s, task, fmt::join(valid, ", ")));
        if (!seen.insert(s).second) bad(fmt::format("eval.settings: '{}' appears twice", s));
    }

    try {
        t.validate();  // the training loop's own checks, as a backstop
    } catch (const Error& e) {
        bad(e.what());
    }
}

std::vector<std::string> icl_config_differences(const IclRunConfig& a, const IclRunConfig& b) {
    std::vector<std::pair<std::string, std::string>> fa, fb;
    flatten(YAML::Load(icl_config_yaml(a)), "", fa);
    flatten(YAML::Load(icl_config_yaml(b)), "", fb);
    const std::map<std::string, std::string> mb(fb.begin(), fb.end());
    std::vector<std::string> out;
    std::set<std::string> in_a;
    for (const auto& [k, v] : fa) {
        in_a.insert(k);
        auto it = mb.find(k);
        if (it == mb.end() || it->second != v) out.push_back(k);
    }
    for (const auto& [k, v] : fb)
        if (!in_a.count(k)) out.push_back(k);
    return out;
}

}  // namespace goose::icl
