#pragma once
// Which device this is: the layout the database records (or a first mount makes), and every
// check that ties the database to its backing and spare before anything is served. Startup
// only: throws std::runtime_error with one line; on a refusal nothing on disk has changed.
//
//   known device:  the labels must carry the database's device id, layout and role, and a
//                  generation not above the database's (else it is an old copy: refused); a
//                  separate spare's backing must be the one recorded (sys/storage_id.hpp)
//   first use:     the spare area must be blank (or -o force); the database row is written
//                  first, the labels second, then it is marked initialised, so a crash in
//                  between leaves a database the next open finishes

#include "remapfs/block/geometry.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/instance/device_layout.hpp"
#include "remapfs/sys/storage.hpp"

#include <functional>
#include <optional>
#include <string>

namespace remapfs {

struct BindRequest {
    std::string backing_path;  // as given, for messages
    std::string backing_real;  // canonical
    const sys::OpenedFile& backing;
    const sys::OpenedFile* spare = nullptr;  // a separate spare, opened
    std::optional<std::string> spare_path;
    std::optional<SpareSize> spare_size;
    std::optional<std::uint32_t> sector_size;
    std::string db_path;
    bool read_only = false;
    bool force = false;
    bool rebind = false;
};

struct Bound {
    Layout layout;
    db::DeviceIdentity identity;
    LabelsOnDisk labels;  // as on disk now
    bool was_dirty = false;  // the last read-write session did not end cleanly
};

// on_bound: called once a new device's row is in the database (from then on a failure must not
// remove the database: the next open finishes the job).
Bound bind_device(const BindRequest& r, db::Store& store, const std::function<void()>& on_bound);

}  // namespace remapfs
