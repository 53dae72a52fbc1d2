#pragma once
// Schema versioning: `PRAGMA application_id` marks a remapfs database, `PRAGMA user_version`
// holds the schema version, and a ladder of numbered steps (Firefox places InitSchema shape)
// brings an older database up to date inside one transaction. A database newer than this code,
// or one that belongs to another application, is refused before anything is written.

#include "remapfs/db/sqlite.hpp"

#include <functional>
#include <string>
#include <vector>

namespace remapfs::db {

inline constexpr std::int64_t kApplicationId = 0x524d4653;  // "RMFS"

struct Migration {
    int to_version;
    std::string what;
    std::function<void(Connection&)> apply;
};

const std::vector<Migration>& schema_ladder();
int latest_version(const std::vector<Migration>& ladder = schema_ladder());

// Throws std::runtime_error with a one-line reason for a foreign or too-new database; does not
// write anything in that case. Returns the version found (0 = empty, new file).
int check_header(Connection& c, const std::vector<Migration>& ladder = schema_ladder());

// check_header, then the ladder. Returns the final version.
int migrate(Connection& c, const std::vector<Migration>& ladder = schema_ladder());

}  // namespace remapfs::db
