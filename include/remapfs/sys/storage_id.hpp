#pragma once
// What a backing is: the same after a reboot that renumbered the device nodes, different for
// another disk of the same size. With a separate spare nothing on the backing itself can say
// whose it is (the image is the whole of it), so the database keeps this and a mount refuses a
// backing that is not the same (two disks that swapped names).
//
// Recorded as "key=value;..." text:
//   a disk or partition   kind=disk; the names the kernel shows in sysfs: wwid= (WWN, NVMe EUI),
//                         serial=, dm= (device-mapper uuid: LVM); part= (partition number)
//   a loop device         kind=loop; the file behind it, as below, with keys prefixed "file."
//   a regular file        kind=file; ino=, fsuuid= (the filesystem's, FS_IOC_GETFSUUID or
//                         /dev/disk/by-uuid), fsid= (statfs: from the UUID on ext4 and btrfs,
//                         from the device number on xfs)
// sysfs and the ioctl, not udev's links: the same names whether or not udev has run yet.

#include <map>
#include <string>

namespace remapfs::sys {

class StorageId {
public:
    StorageId() = default;
    static StorageId of(const std::string& path);  // empty where nothing is known
    static StorageId parse(const std::string& text);

    const std::string& text() const { return text_; }
    bool empty() const { return parts_.empty(); }
    // A stable name in common (and the same partition, the same inode); false if both have
    // stable names and share none. Where one side has no stable name nothing can tell: true.
    bool same_as(const StorageId& o) const;
    bool has_stable_name() const;

private:
    explicit StorageId(std::map<std::string, std::string> parts);
    std::map<std::string, std::string> parts_;
    std::string text_;
};

}  // namespace remapfs::sys
