#pragma once
// A name for the disk or file a backing is: the same after a reboot that renumbered the device
// nodes, different for another disk of the same size. With a separate spare nothing on the
// backing itself can say whose it is (the image is the whole of it), so the database keeps
// this name and a mount refuses a backing whose name changed (two disks swapped).
//
//   a disk or partition   its /dev/disk/by-id name, WWN preferred ("by-id:wwn-0x5000c500a1b2c3d4-part1"),
//                         else the WWN or serial sysfs shows ("sysfs:<wwid>:part1")
//   a loop device         the file behind it, as below ("loop:file:...")
//   a regular file        its filesystem's id and its inode ("file:fsid=...:ino=...")
//
// Empty where there is none (a virtual disk without a serial and no udev).

#include <string>

namespace remapfs::sys {

std::string storage_identity(const std::string& path);

}  // namespace remapfs::sys
