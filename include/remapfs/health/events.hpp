#pragma once
// Health facts as they happen: per-sector events from user I/O and from the scanner. The
// remap machinery reports them to an EventSink (the history writer in the daemon); a sink must
// never block the caller.

#include "remapfs/units.hpp"

#include <cstdint>
#include <string>

namespace remapfs::health {

enum class EventKind { read_error, write_error, slow_read, pending, remap, heal };
enum class Source { user, scan, admin };

const char* to_string(EventKind k);
const char* to_string(Source s);

struct SectorEvent {
    std::int64_t t = 0;  // unix seconds
    Lba lba;
    EventKind kind = EventKind::read_error;
    std::int64_t latency_us = -1;  // -1: not measured
    Source source = Source::user;
    std::string detail;
};

class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void event(SectorEvent e) = 0;
};

// Sends every event to two sinks (the history, and the scanner which rescans around errors).
class TeeSink final : public EventSink {
public:
    TeeSink(EventSink& a, EventSink* b) : a_(a), b_(b) {}
    void event(SectorEvent e) override {
        if (b_) b_->event(e);
        a_.event(std::move(e));
    }

private:
    EventSink& a_;
    EventSink* b_;
};

// Who is doing I/O on this thread: the scanner marks its thread so that events it causes deep
// in the remap layer are attributed to it.
Source current_source();
class ScopedSource {
public:
    explicit ScopedSource(Source s);
    ~ScopedSource();
    ScopedSource(const ScopedSource&) = delete;
    ScopedSource& operator=(const ScopedSource&) = delete;

private:
    Source prev_;
};

}  // namespace remapfs::health
