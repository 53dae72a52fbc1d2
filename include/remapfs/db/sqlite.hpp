#pragma once
// RAII SQLite wrappers in the shape of Nix's sqlite.hh: a move-only connection, a statement
// finalised in its destructor with a scoped `Use` that resets on entry and exit and binds
// positionally, and a transaction that rolls back unless committed. Errors throw db::Error
// (extended code + file name); the data path catches it at the store boundary and turns it
// into EIO, so no exception crosses a block layer.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace remapfs::db {

class Error : public std::runtime_error {
public:
    Error(int extended_code, const std::string& what) : std::runtime_error(what), code_(extended_code) {}
    int code() const { return code_; }

private:
    int code_;
};

class Statement;

class Connection {
public:
    enum class Mode { read_write_create, read_write, read_only };
    Connection() = default;
    Connection(const std::string& path, Mode mode);
    Connection(Connection&& o) noexcept;
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    sqlite3* get() const { return db_; }
    const std::string& path() const { return path_; }
    void exec(const std::string& sql);
    std::int64_t query_int(const std::string& sql);  // first column of the first row
    // How long a statement waits for another connection's lock before SQLITE_BUSY (default 5 s).
    void set_busy_timeout(int ms) { sqlite3_busy_timeout(db_, ms); }
    [[noreturn]] void fail(int rc, std::string_view what) const;
    // A statement prepared once per connection and kept until it closes (the remap commits run
    // the same few statements for ever). sql must outlive the connection: a string literal.
    Statement& prepared(const char* sql);

private:
    sqlite3* db_ = nullptr;
    std::string path_;
    std::unique_ptr<std::unordered_map<const char*, std::unique_ptr<Statement>>> cache_;
};

class Statement {
public:
    Statement() = default;
    Statement(Connection& conn, const std::string& sql);
    Statement(Statement&& o) noexcept;
    Statement& operator=(Statement&& o) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement();

    class Use {
    public:
        explicit Use(Statement& s);
        ~Use();
        Use(const Use&) = delete;
        Use& operator=(const Use&) = delete;

        Use& operator()(std::int64_t v);
        Use& operator()(std::string_view v);
        Use& operator()(std::nullopt_t);
        Use& operator()(const std::optional<std::string>& v);

        void exec();   // a statement returning no rows
        bool next();   // true while there is a row
        std::int64_t get_int(int col);
        double get_double(int col);
        std::string get_str(int col);
        std::optional<std::string> get_opt_str(int col);
        bool is_null(int col);

    private:
        Statement& s_;
        int index_ = 1;
    };
    Use use() { return Use(*this); }

private:
    [[noreturn]] void fail(int rc, std::string_view what) const;
    // The connection's handle and name, not the Connection: a connection may be moved while
    // its cached statements live on.
    sqlite3* db_ = nullptr;
    std::string path_;
    sqlite3_stmt* stmt_ = nullptr;
    std::string sql_;
};

class Transaction {
public:
    // BEGIN IMMEDIATE: take the write lock up front so commit cannot fail with SQLITE_BUSY
    // half-way through a remap.
    explicit Transaction(Connection& conn);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Connection& conn_;
    bool active_ = true;
};

}  // namespace remapfs::db
