// ICL evaluation files: metrics.json (write and read back) and the flat curves CSV.
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "goose/core/error.h"
#include "goose/icl/eval.h"
#include "goose/io/atomic_file.h"

namespace goose::icl {
namespace {

using nlohmann::json;

json number_array(const std::vector<double>& v) {
    json a = json::array();
    for (double x : v) a.push_back(std::isfinite(x) ? json(x) : json(nullptr));
    return a;
}

std::vector<double> read_numbers(const json& a, const std::string& where) {
    GOOSE_CHECK(a.is_array(), "{}: expected an array", where);
    std::vector<double> v;
    v.reserve(a.size());
    for (const auto& x : a) {
        if (x.is_null()) v.push_back(std::numeric_limits<double>::quiet_NaN());
        else {
            GOOSE_CHECK(x.is_number(), "{}: expected numbers, got {}", where, x.dump());
            v.push_back(x.get<double>());
        }
    }
    return v;
}

}  // namespace

void write_metrics_json(const std::string& path, const std::string& task, int64_t n_dims,
                        int64_t n_points, const EvalResults& results) {
    json curves = json::object();
    for (const auto& [setting, by_name] : results) {
        json s = json::object();
        for (const auto& [name, c] : by_name)
            s[name] = json{{"k", c.k},
                           {"mean", number_array(c.mean)},
                           {"lo", number_array(c.lo)},
                           {"hi", number_array(c.hi)}};
        curves[setting] = std::move(s);
    }
    const json doc = {
        {"task", task}, {"n_dims", n_dims}, {"n_points", n_points}, {"curves", curves}};
    io::write_file_atomic(path, doc.dump(1) + "\n");
}

EvalResults read_metrics_json(const std::string& path) {
    const std::string text = io::read_file(path);
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        fail("read_metrics_json: {}: malformed JSON: {}", path, e.what());
    }
    const std::string op = "read_metrics_json: " + path;
    GOOSE_CHECK(doc.is_object() && doc.contains("curves") && doc["curves"].is_object(),
                "{}: expected an object with a \"curves\" object", op);
    EvalResults out;
    for (const auto& [setting, by_name] : doc["curves"].items()) {
        GOOSE_CHECK(by_name.is_object(), "{}: curves.{} is not an object", op, setting);
        for (const auto& [name, c] : by_name.items()) {
            const std::string where = fmt::format("{}: curves.{}.{}", op, setting, name);
            GOOSE_CHECK(c.is_object(), "{}: not an object", where);
            for (const char* key : {"k", "mean", "lo", "hi"})
                GOOSE_CHECK(c.contains(key), "{}: missing \"{}\"", where, key);
            Curve curve;
            const auto k = read_numbers(c["k"], where + ".k");
            for (double x : k) curve.k.push_back(static_cast<int64_t>(x));
            curve.mean = read_numbers(c["mean"], where + ".mean");
            curve.lo = read_numbers(c["lo"], where + ".lo");
            curve.hi = read_numbers(c["hi"], where + ".hi");
            GOOSE_CHECK(curve.mean.size() == k.size() && curve.lo.size() == k.size() &&
                            curve.hi.size() == k.size(),
                        "{}: k, mean, lo, hi have lengths {}, {}, {}, {}", where, k.size(),
                        curve.mean.size(), curve.lo.size(), curve.hi.size());
            out[setting][name] = std::move(curve);
        }
    }
    return out;
}

void write_curves_csv(const std::string& path, const EvalResults& results) {
    std::string s = "setting,name,k,mean,lo,hi\n";
    for (const auto& [setting, by_name] : results)
        for (const auto& [name, c] : by_name)
            for (size_t i = 0; i < c.k.size(); ++i)
                s += fmt::format("{},{},{},{},{},{}\n", setting, name, c.k[i], c.mean[i], c.lo[i],
                                 c.hi[i]);
    io::write_file_atomic(path, s);
}

}  // namespace goose::icl
