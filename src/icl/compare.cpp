// `goose icl compare`: models of several runs beside their baselines, one table and one plot.
#include "goose/icl/compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "goose/core/error.h"
#include "goose/icl/run.h"
#include "goose/io/atomic_file.h"

namespace goose::icl {
namespace fs = std::filesystem;

namespace {

struct LoadedRun {
    std::string dir, label;
    IclRunConfig cfg;
    EvalResults results;
};

std::string run_label(const std::string& dir) {
    fs::path p = fs::path(dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    const std::string name = p.filename().string();
    return name.empty() || name == "." ? dir : name;
}

LoadedRun load_run(const std::string& dir, const std::string& setting) {
    LoadedRun r;
    r.dir = dir;
    r.cfg = load_run_config(dir);
    const std::string metrics = (fs::path(dir) / "metrics.json").string();
    if (!fs::is_regular_file(metrics))
        fail("icl compare: {} is missing (evaluate the run first: goose icl eval {})", metrics,
             dir);
    r.results = read_metrics_json(metrics);
    auto it = r.results.find(setting);
    if (it == r.results.end()) {
        std::vector<std::string> have;
        for (const auto& [s, _] : r.results) have.push_back(s);
        fail(
            "icl compare: {} has no setting '{}' (it has: {}; evaluate it with goose icl eval "
            "{} --ood {})",
            metrics, setting, fmt::join(have, ", "), dir, setting);
    }
    if (!it->second.count(r.cfg.train.model.family))
        fail("icl compare: {} has no curve '{}' (the model of {}/config.yaml) in setting {}",
             metrics, r.cfg.train.model.family, dir, setting);
    return r;
}

// The mean at k, NaN when the curve has no such k.
double mean_at(const Curve& c, int64_t k) {
    for (size_t i = 0; i < c.k.size(); ++i)
        if (c.k[i] == k) return c.mean[i];
    return std::nan("");
}

nlohmann::json numbers(const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
    return a;
}

}  // namespace

std::vector<CompareRow> compare_runs(const CompareOptions& o) {
    if (o.run_dirs.empty()) fail("icl compare: give at least one run directory");
    std::vector<LoadedRun> runs;
    for (const auto& d : o.run_dirs) runs.push_back(load_run(d, o.setting));
    std::map<std::string, int> label_count;
    for (auto& r : runs) label_count[r.label = run_label(r.dir)]++;
    for (auto& r : runs)
        if (label_count[r.label] > 1) r.label = r.dir;  // same directory names: the paths

    using Group = std::tuple<std::string, int64_t, int64_t>;  // task, d, n
    auto group_of = [](const LoadedRun& r) {
        return Group{r.cfg.train.task.name, r.cfg.train.model.n_dims, r.cfg.train.points.end};
    };
    std::set<Group> groups;
    for (const auto& r : runs) groups.insert(group_of(r));

    std::vector<CompareRow> rows;
    for (const auto& r : runs)
        rows.push_back({fmt::format("{} ({})", r.label, r.cfg.train.model.family), "model", r.dir,
                        r.cfg.train.task.name, r.cfg.train.model.n_dims,
                        r.results.at(o.setting).at(r.cfg.train.model.family)});
    std::set<Group> done;
    for (const auto& r : runs) {
        if (!done.insert(group_of(r)).second) continue;
        for (const auto& [name, curve] : r.results.at(o.setting)) {
            if (name == r.cfg.train.model.family || name == "zero") continue;
            std::string label = name;
            if (groups.size() > 1)
                label += fmt::format(" [{} d={}]", r.cfg.train.task.name, r.cfg.train.model.n_dims);
            rows.push_back(
                {label, "baseline", r.dir, r.cfg.train.task.name, r.cfg.train.model.n_dims, curve});
        }
    }

    std::vector<int64_t> ks = o.ks;
    if (ks.empty()) {
        const int64_t d = runs[0].cfg.train.model.n_dims, n = runs[0].cfg.train.points.end;
        for (int64_t k : {int64_t(1), d / 2, d, n - 1})
            if (k >= 0 && k < n && std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
    }
    for (int64_t k : ks)
        if (k < 0) fail("icl compare: k must be >= 0, got {}", k);

    // The table.
    size_t width = 12;
    for (const auto& r : rows) width = std::max(width, r.label.size());
    std::printf("\ncompare (setting %s): normalised squared error at k in-context examples\n",
                o.setting.c_str());
    std::printf("%-*s %-8s", static_cast<int>(width), "run / baseline", "kind");
    for (int64_t k : ks) std::printf(" %9s", fmt::format("k={}", k).c_str());
    std::printf("\n");
    std::string csv = "label,kind,run_dir,task,n_dims";
    for (int64_t k : ks) csv += fmt::format(",k={}", k);
    csv += "\n";
    for (const auto& r : rows) {
        std::printf("%-*s %-8s", static_cast<int>(width), r.label.c_str(), r.kind.c_str());
        csv += fmt::format("\"{}\",{},\"{}\",{},{}", r.label, r.kind, r.run_dir, r.task, r.n_dims);
        for (int64_t k : ks) {
            const double v = mean_at(r.curve, k);
            std::printf(" %9s", std::isfinite(v) ? fmt::format("{:.4f}", v).c_str() : "-");
            csv += std::isfinite(v) ? fmt::format(",{}", v) : std::string(",");
        }
        std::printf("\n");
        csv += "\n";
    }

    fs::create_directories(o.out_dir);
    io::write_file_atomic((fs::path(o.out_dir) / "compare.csv").string(), csv);
    nlohmann::json doc = {{"setting", o.setting}, {"ks", ks}, {"rows", nlohmann::json::array()}};
    for (const auto& r : rows)
        doc["rows"].push_back({{"label", r.label},
                               {"kind", r.kind},
                               {"run_dir", r.run_dir},
                               {"task", r.task},
                               {"n_dims", r.n_dims},
                               {"k", r.curve.k},
                               {"mean", numbers(r.curve.mean)},
                               {"lo", numbers(r.curve.lo)},
                               {"hi", numbers(r.curve.hi)}});
    const std::string json_path = (fs::path(o.out_dir) / "compare.json").string();
    io::write_file_atomic(json_path, doc.dump(1) + "\n");
    std::printf("\ntable: %s/compare.csv\n", o.out_dir.c_str());
    if (plots_available()) {
        std::string out;
        const int rc = run_python_script("compare_icl.py", {json_path, "--out", o.out_dir}, &out);
        if (rc == 0)
            std::printf("plot: %s", out.c_str());
        else
            std::printf("plot: python/compare_icl.py failed:\n%s\n", out.c_str());
    } else {
        std::printf("plot: skipped (python3-matplotlib is not installed)\n");
    }
    std::fflush(stdout);
    return rows;
}

}  // namespace goose::icl
