#pragma once
// The SQL of the health history, on a connection of its own (synchronous=NORMAL: history is not
// what protects data), its statements prepared once. The one writer of history is
// health::HistoryWriter, which batches what producers push and calls this from its thread.
//
// Tiers, so the database stays bounded however long the device lives:
//   region_pass (kept kRawDays)  -> region_daily (kept kDailyDays) -> region_monthly (for ever)
//   sector_event (kept kEventDays) -> event_daily (for ever); device_daily (for ever)

#include "remapfs/db/records.hpp"
#include "remapfs/db/sqlite.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace remapfs::db {

class HistoryStore {
public:
    explicit HistoryStore(const std::string& db_path);  // the database must be migrated; throws

    // One transaction for everything written through it; rolled back unless committed.
    class Batch {
    public:
        explicit Batch(HistoryStore& s);
        void event(const SectorEvent& e);
        void region(const RegionStats& r);  // and its day in device_daily
        void state(const ScanCheckpoint& c);
        void pass(const PassRecord& p);
        void commit();

    private:
        HistoryStore& s_;
        Transaction txn_;
    };
    Batch batch() { return Batch(*this); }

    // Folds rows older than their tier's window into the next tier, in one transaction.
    void downsample(std::int64_t now_s);

private:
    Connection conn_;
    std::optional<Statement> event_, region_, day_, state_, pass_;
};

}  // namespace remapfs::db
