#pragma once
// One remapfs instance: the backing (and spare) opened, the database opened, checked against
// the backing and migrated, the remap table loaded, and the block stack built on top. Used by
// the daemon and by remapctl when no daemon is running. Opening throws std::runtime_error with
// a one-line message; nothing on disk changes unless every check passed.

#include "remapfs/block/backing.hpp"
#include "remapfs/block/fault_injector.hpp"
#include "remapfs/block/layer.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/instance/device_layout.hpp"
#include "remapfs/instance/stack.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/health/history.hpp"
#include "remapfs/health/pacer.hpp"
#include "remapfs/health/scanner.hpp"
#include "remapfs/core/parse.hpp"
#include "remapfs/remap/remap_layer.hpp"
#include "remapfs/remap/remapper.hpp"
#include "remapfs/remap/spare_meta.hpp"
#include "remapfs/remap/table.hpp"
#include "remapfs/sys/storage.hpp"
#include "remapfs/core/unique_fd.hpp"

#include <memory>
#include <optional>
#include <string>

namespace remapfs {

namespace control {
struct Target;  // control/control.hpp: which the data path does not include (it brings JSON)
}

using sys::BackingIo;

struct InstanceOptions {
    std::string backing_path;
    std::optional<std::string> db_path;  // default: default_db_path()
    std::optional<std::string> spare_path;
    std::optional<SpareSize> spare_size;
    std::optional<std::uint32_t> sector_size;
    bool read_only = false;
    bool create_db = true;  // false: the database must exist (remapctl)
    BackingIo backing_io = BackingIo::automatic;
    // First use only: take the spare area even where it holds data (-o force).
    bool force = false;
    // A separate spare's backing may have another identity than recorded: it was copied or
    // moved on purpose (-o rebind). The new identity is recorded.
    bool rebind = false;
    remap::Policy policy;
    // Tests and simulation only: put a FaultInjector under the remap layer (-o allow_inject).
    bool allow_inject = false;
    std::vector<block::FaultRule> faults;  // loaded at open (-o inject_file=)
    std::uint32_t hdd_mb_s = 0;            // -o hdd_model=: HDD-like latency (0: off)
    Clock* clock = nullptr;                // default: the system clock
};

// BACKING.remapfs.db beside a regular file; /var/lib/remapfs/<path with / as ->.db for a
// block device (a device node's directory is no place for a database).
std::string default_db_path(const std::string& backing_path);
// The database an Instance::open(o) uses: o.db_path, else the default for o.backing_path.
std::string db_path_for(const InstanceOptions& o);

class Instance {
public:
    ~Instance();
    // Daemon only, after detaching: the mount log row, the health history writer, the scanner
    // and the remapper's background worker (threads must not cross the daemon's fork).
    void start_services(bool scanner, std::string_view mountpoint);
    health::Scanner* scanner() { return scanner_.get(); }
    health::HistoryWriter* history() { return history_.get(); }

    static std::unique_ptr<Instance> open(const InstanceOptions& opts);
    // remapctl without a daemon: everything comes from the database's device row.
    static std::unique_ptr<Instance> open_from_db(const std::string& db_path, bool read_only);

    block::BlockLayer& image() { return *stack_.top; }         // the remap layer, byte-addressed
    block::FaultInjector* injector() { return stack_.injector; } // null unless allow_inject
    const block::Backing& backing() const { return *stack_.backing; }  // the bottom of the stack
    remap::SpareMeta& spare_meta() { return stack_.remap->spare_meta(); }
    // What control commands (the daemon's socket, remapctl offline) work on.
    control::Target control_target();
    remap::Remapper& remapper() { return stack_.remap->remapper(); }
    remap::TableHolder& tables() { return tables_; }
    db::Store& store() { return *store_; }
    const Geometry& geometry() const { return geometry_; }
    const db::DeviceIdentity& identity() const { return identity_; }
    const std::string& db_path() const { return db_path_; }
    bool read_only() const { return read_only_; }
    bool direct_io() const { return direct_; }

private:
    Instance() = default;
    void reconcile_after_crash(SpareSlot next_slot);

    // Storage, and what it is.
    UniqueFd backing_fd_;
    UniqueFd spare_fd_;
    std::string db_path_;
    std::optional<db::Store> store_;
    db::DeviceIdentity identity_;
    Geometry geometry_;
    bool read_only_ = false;
    bool direct_ = false;
    // The table and the block stack serving it (stack.hpp).
    remap::TableHolder tables_;
    Stack stack_;
    Clock* clock_ = nullptr;
    std::unique_ptr<block::Activity> activity_;
    // The daemon's services (instance_services.cpp).
    std::optional<std::int64_t> mount_log_id_;  // this run's mount_log row, closed at a clean stop
    std::unique_ptr<health::HistoryWriter> history_;
    std::unique_ptr<health::EventSink> tee_;
    std::unique_ptr<health::Scanner> scanner_;
};

// The control socket of a running instance, derived from the device id, in control_socket_dir().
std::string control_socket_dir();
std::string control_socket_path(const std::string& uuid);

}  // namespace remapfs
