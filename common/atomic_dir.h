// Crash-safe replacement of whole directories (checkpoints, final model
// dirs). A dir is built under a temporary name, then swapped in with two
// renames: the old dir is renamed aside, the new one renamed in, and only
// then is the old one deleted. At every moment one complete dir exists under
// the final name or under its aside name, so a kill between the two renames
// loses nothing: the checkpoint listing and `--resume DIR` accept a dir's
// aside name (dir_or_aside), and the next replacement or recover_aside()
// puts things right.
#pragma once

#include <string>

namespace st {

/// The aside name's suffix.
constexpr const char* kAsideSuffix = ".aside";

/// `target` + kAsideSuffix: where the previous dir waits during a replacement.
std::string aside_path(const std::string& target);

/// Where a dir that will become `target` is built: a hidden name beside it
/// that is this process's own (".<name>.tmp-<pid>").
std::string staging_path(const std::string& target);

/// Makes the complete dir `staged` (same filesystem) the dir `target`,
/// replacing any dir already there as described above. st::Error names the
/// paths when a rename fails.
void replace_dir(const std::string& staged, const std::string& target);

/// `target` when it exists; else its aside dir when that exists (a kill
/// struck between the two renames); else "".
std::string dir_or_aside(const std::string& target);

/// Finishes an interrupted replacement: an aside dir whose target is
/// missing is renamed back; one whose target exists is deleted.
void recover_aside(const std::string& target);

/// After a kill, in a dir whose entries are replaced this way: every
/// interrupted replacement is finished (recover_aside) and staging dirs that
/// were never renamed in are removed.
void recover_dir_entries(const std::string& dir);

/// Test-only: with ST_TEST_KILL_BETWEEN_RENAMES set in the environment, a
/// replacement of an existing dir kills the process (SIGKILL) after
/// renaming the old dir aside, before renaming the new one in.
constexpr const char* kKillBetweenRenamesEnv = "ST_TEST_KILL_BETWEEN_RENAMES";

}  // namespace st
