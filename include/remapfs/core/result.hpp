#pragma once
// Result<T>: a value or a positive errno. Shaped like C++23 std::expected (has_value, value,
// error, operator*, operator->) so switching to it later is mechanical; GCC 12 in C++20 mode
// has no <expected>.

#include <cassert>
#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace remapfs {

// A positive errno value; wraps it so `return Errno{EIO};` reads unambiguously.
struct Errno {
    int code;
    constexpr explicit Errno(int c) : code(c) { assert(c > 0); }
};

// Captures errno right after a failed syscall (passthrough_hp rule: before anything that may
// clobber it).
inline Errno last_errno() { return Errno{errno > 0 ? errno : EIO}; }

std::string errno_name(int code);  // "EIO: Input/output error"

template <typename T>
class [[nodiscard]] Result {
public:
    using value_type = T;
    Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit by design
    Result(Errno e) : v_(std::in_place_index<1>, e.code) {}   // NOLINT

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T& value() & { assert(has_value()); return std::get<0>(v_); }
    const T& value() const& { assert(has_value()); return std::get<0>(v_); }
    T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    int error() const { assert(!has_value()); return std::get<1>(v_); }
    T value_or(T other) const { return has_value() ? std::get<0>(v_) : std::move(other); }

private:
    std::variant<T, int> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Errno e) : err_(e.code) {}  // NOLINT
    bool has_value() const { return err_ == 0; }
    explicit operator bool() const { return has_value(); }
    void value() const { assert(has_value()); }
    int error() const { assert(!has_value()); return err_; }

private:
    int err_ = 0;
};

inline Result<void> ok() { return {}; }

}  // namespace remapfs

// Propagate an error out of a function returning any Result<U>.
#define REMAPFS_TRY(expr)                                          \
    do {                                                           \
        if (auto _r = (expr); !_r) return ::remapfs::Errno{_r.error()}; \
    } while (0)
