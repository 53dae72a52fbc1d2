#include "remapfs/db/sqlite.hpp"

#include "remapfs/core/log.hpp"

#include <fmt/format.h>

#include <mutex>
#include <utility>

namespace remapfs::db {
namespace {

void sqlite_log(void*, int code, const char* msg) {
    // SQLITE_NOTICE/WARNING about WAL recovery are interesting; plain errors we report ourselves.
    int primary = code & 0xff;
    if (primary == SQLITE_NOTICE || primary == SQLITE_WARNING) log::info("sqlite: {}", msg);
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, nullptr);
        sqlite3_initialize();
    });
}

}  // namespace

Connection::Connection(const std::string& path, Mode mode) : path_(path) {
    init_once();
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;  // one connection per thread; no symlinks
    switch (mode) {
    case Mode::read_write_create: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
    case Mode::read_write: flags |= SQLITE_OPEN_READWRITE; break;
    case Mode::read_only: flags |= SQLITE_OPEN_READONLY; break;
    }
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error(rc, fmt::format("cannot open database {}: {}", path, msg));
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
}

Connection::Connection(Connection&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)), cache_(std::move(o.cache_)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        cache_.reset();
        sqlite3_close_v2(db_);
        db_ = std::exchange(o.db_, nullptr);
        path_ = std::move(o.path_);
        cache_ = std::move(o.cache_);
    }
    return *this;
}

Connection::~Connection() {
    cache_.reset();  // finalised before the handle closes
    sqlite3_close_v2(db_);
}

Statement& Connection::prepared(const char* sql) {
    if (!cache_) cache_ = std::make_unique<std::unordered_map<const char*, std::unique_ptr<Statement>>>();
    auto& slot = (*cache_)[sql];
    if (!slot) slot = std::make_unique<Statement>(*this, sql);
    return *slot;
}

void Connection::fail(int rc, std::string_view what) const {
    throw Error(rc, fmt::format("database {}: {}: {} (code {})", path_, what,
                                db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc), rc));
}

void Connection::exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw Error(rc, fmt::format("database {}: {} (code {})", path_, msg, rc));
    }
}

std::int64_t Connection::query_int(const std::string& sql) {
    Statement s(*this, sql);
    auto u = s.use();
    if (!u.next()) fail(SQLITE_ERROR, "no row for " + sql);
    return u.get_int(0);
}

Statement::Statement(Connection& conn, const std::string& sql) : db_(conn.get()), path_(conn.path()), sql_(sql) {
    int rc = sqlite3_prepare_v2(conn.get(), sql.c_str(), -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) conn.fail(rc, "preparing '" + sql + "'");
}

void Statement::fail(int rc, std::string_view what) const {
    throw Error(rc, fmt::format("database {}: {}: {} (code {})", path_, what, db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc),
                                rc));
}

Statement::Statement(Statement&& o) noexcept
    : db_(o.db_), path_(std::move(o.path_)), stmt_(std::exchange(o.stmt_, nullptr)), sql_(std::move(o.sql_)) {}

Statement& Statement::operator=(Statement&& o) noexcept {
    if (this != &o) {
        sqlite3_finalize(stmt_);
        db_ = o.db_;
        path_ = std::move(o.path_);
        stmt_ = std::exchange(o.stmt_, nullptr);
        sql_ = std::move(o.sql_);
    }
    return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Use::Use(Statement& s) : s_(s) { sqlite3_reset(s_.stmt_); sqlite3_clear_bindings(s_.stmt_); }
Statement::Use::~Use() { sqlite3_reset(s_.stmt_); }

Statement::Use& Statement::Use::operator()(std::int64_t v) {
    int rc = sqlite3_bind_int64(s_.stmt_, index_++, v);
    if (rc != SQLITE_OK) s_.fail(rc, "binding a value");
    return *this;
}

Statement::Use& Statement::Use::operator()(std::string_view v) {
    int rc = sqlite3_bind_text(s_.stmt_, index_++, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) s_.fail(rc, "binding a value");
    return *this;
}

Statement::Use& Statement::Use::operator()(std::nullopt_t) {
    int rc = sqlite3_bind_null(s_.stmt_, index_++);
    if (rc != SQLITE_OK) s_.fail(rc, "binding a value");
    return *this;
}

Statement::Use& Statement::Use::operator()(const std::optional<std::string>& v) {
    return v ? (*this)(std::string_view(*v)) : (*this)(std::nullopt);
}

void Statement::Use::exec() {
    int rc = sqlite3_step(s_.stmt_);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) s_.fail(rc, "executing '" + s_.sql_ + "'");
}

bool Statement::Use::next() {
    int rc = sqlite3_step(s_.stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    s_.fail(rc, "querying '" + s_.sql_ + "'");
}

std::int64_t Statement::Use::get_int(int col) { return sqlite3_column_int64(s_.stmt_, col); }
double Statement::Use::get_double(int col) { return sqlite3_column_double(s_.stmt_, col); }

std::string Statement::Use::get_str(int col) {
    const auto* p = sqlite3_column_text(s_.stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_.stmt_, col)))
             : std::string();
}

std::optional<std::string> Statement::Use::get_opt_str(int col) {
    if (is_null(col)) return std::nullopt;
    return get_str(col);
}

bool Statement::Use::is_null(int col) { return sqlite3_column_type(s_.stmt_, col) == SQLITE_NULL; }

Transaction::Transaction(Connection& conn) : conn_(conn) { conn_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
    if (active_) sqlite3_exec(conn_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    conn_.exec("COMMIT");
    active_ = false;
}

}  // namespace remapfs::db
