#pragma once
// Where the remap machinery reports health facts as they happen (the history writer and the
// scanner in the daemon). A sink must never block the caller: the data path calls it.

#include "remapfs/db/records.hpp"

namespace remapfs::remap {

using db::EventKind;
using db::SectorEvent;
using db::Source;

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

}  // namespace remapfs::remap
