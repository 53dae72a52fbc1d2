#include "remapfs/block/fault_rule_json.hpp"

#include "remapfs/core/parse.hpp"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

namespace remapfs::block {
namespace {

using nlohmann::json;

struct ErrnoName {
    const char* name;
    int value;
};
constexpr ErrnoName kErrnos[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"ENOMEM", ENOMEM},
                                 {"ETIMEDOUT", ETIMEDOUT}, {"EAGAIN", EAGAIN}, {"EPERM", EPERM}, {"ENODEV", ENODEV},
                                 {"EINVAL", EINVAL}, {"EBADMSG", EBADMSG}, {"ENODATA", ENODATA}};

int parse_errno(const std::string& s) {
    if (s == "none" || s == "0") return 0;
    for (const auto& e : kErrnos)
        if (s == e.name) return e.value;
    throw std::invalid_argument(fmt::format("errno '{}' is not one of EIO, ENOSPC, EROFS, ENOMEM, ETIMEDOUT, EAGAIN, "
                                            "EPERM, ENODEV, EINVAL, EBADMSG, ENODATA, none", s));
}

std::string errno_str(int e) {
    for (const auto& n : kErrnos)
        if (n.value == e) return n.name;
    return e == 0 ? "none" : std::to_string(e);
}

}  // namespace

FaultRule fault_rule_from_json(const json& j) try {
    if (!j.is_object()) throw std::invalid_argument("a fault rule must be a JSON object");
    static const std::set<std::string> known = {"sectors", "target", "op", "errno", "latency_ms", "latency_us",
                                                "probability", "after_ops", "at"};
    for (const auto& [k, v] : j.items())
        if (!known.count(k)) throw std::invalid_argument(fmt::format("unknown fault rule key '{}'", k));
    FaultRule r;
    if (!j.contains("sectors")) throw std::invalid_argument("a fault rule needs \"sectors\" (N or FIRST-LAST)");
    const json& s = j.at("sectors");
    if (s.is_number_integer() && s.get<std::int64_t>() < 0) throw std::invalid_argument("sectors must not be negative");
    std::string spec = s.is_number_integer() ? std::to_string(s.get<std::uint64_t>()) : s.get<std::string>();
    auto dash = spec.find('-');
    r.first = parse_uint("sector", spec.substr(0, dash));
    r.last = dash == std::string::npos ? r.first : parse_uint("sector", spec.substr(dash + 1));
    if (r.last < r.first) throw std::invalid_argument(fmt::format("sector range '{}' is backwards", spec));
    std::string target = j.value("target", "image");
    if (target == "image") r.target = FaultRule::Target::image;
    else if (target == "spare") r.target = FaultRule::Target::spare;
    else throw std::invalid_argument(fmt::format("target '{}' is not image or spare", target));
    std::string op = j.value("op", "both");
    if (op == "read") r.op = FaultRule::Op::read;
    else if (op == "write") r.op = FaultRule::Op::write;
    else if (op == "both") r.op = FaultRule::Op::both;
    else throw std::invalid_argument(fmt::format("op '{}' is not read, write or both", op));
    r.error = j.contains("errno") ? parse_errno(j.at("errno").get<std::string>()) : EIO;
    double lat_us = j.contains("latency_us") ? j.at("latency_us").get<double>()
                                              : j.value("latency_ms", 0.0) * 1000.0;
    if (lat_us < 0 || lat_us > 60e6) throw std::invalid_argument("latency must be between 0 and 60 s");
    r.latency_us = static_cast<std::uint32_t>(lat_us);
    r.probability = j.value("probability", 1.0);
    if (!(r.probability > 0 && r.probability <= 1)) throw std::invalid_argument("probability must be in (0, 1]");
    r.after_ops = j.value("after_ops", std::uint64_t{0});
    r.from_time_s = j.value("at", std::int64_t{0});
    if (r.error == 0 && r.latency_us == 0) throw std::invalid_argument("a rule with errno none needs a latency");
    return r;
} catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("fault rule {}: a value has the wrong type", j.dump()));
}

json to_json(const FaultRule& rule) {
    return {{"sectors", rule.first == rule.last ? std::to_string(rule.first) : fmt::format("{}-{}", rule.first, rule.last)},
            {"target", rule.target == FaultRule::Target::image ? "image" : "spare"},
            {"op", rule.op == FaultRule::Op::read ? "read" : rule.op == FaultRule::Op::write ? "write" : "both"},
            {"errno", errno_str(rule.error)},
            {"latency_us", rule.latency_us},
            {"probability", rule.probability},
            {"after_ops", rule.after_ops},
            {"at", rule.from_time_s}};
}

std::vector<FaultRule> load_fault_rules(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(fmt::format("cannot read fault rules {}: {}", path, std::strerror(errno)));
    json j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.is_array())
        throw std::runtime_error(fmt::format("fault rules {}: not a JSON array of rules", path));
    std::vector<FaultRule> rules;
    for (std::size_t i = 0; i < j.size(); ++i) {
        try {
            rules.push_back(fault_rule_from_json(j[i]));
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("fault rules {}: rule {}: {}", path, i + 1, e.what()));
        }
    }
    return rules;
}

}  // namespace remapfs::block
