package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
)

// PermissionHint rewrites a permission error on the data directory or
// the store (create, open, lock) into one line naming the path once, the
// user the process runs as and the fix. dataDir is the --data in use.
// Other errors come back unchanged.
func PermissionHint(err error, dataDir string) error {
	var pe *fs.PathError
	if err == nil || !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) {
		return err
	}
	who := currentUser()
	if pe.Op == "mkdir" {
		return &permissionError{err: err, msg: fmt.Sprintf("cannot create the data directory %s: permission denied for user %s; create it for that user (%s) or choose another directory with --data",
			pe.Path, who.name, mkdirFix(who, dataDir))}
	}
	return &permissionError{err: err, msg: fmt.Sprintf("permission denied on %s for user %s (the user shopbridge runs as); let that user write the data directory (%s) or choose another directory with --data",
		pe.Path, who.name, chownFix(who, dataDir))}
}

type permissionError struct {
	err error
	msg string
}

func (e *permissionError) Error() string { return e.msg }
func (e *permissionError) Unwrap() error { return e.err }

type procUser struct{ name, uid, gid string }

func currentUser() procUser {
	u := procUser{name: "?", uid: fmt.Sprint(os.Getuid()), gid: fmt.Sprint(os.Getgid())}
	if cu, err := user.Current(); err == nil {
		u.name, u.uid, u.gid = cu.Username, cu.Uid, cu.Gid
	} else if runtime.GOOS != "windows" {
		u.name = "uid " + u.uid
	}
	return u
}

func chownFix(u procUser, dataDir string) string {
	dir, _ := filepath.Abs(dataDir)
	if runtime.GOOS == "windows" {
		return fmt.Sprintf(`icacls "%s" /grant "%s":(OI)(CI)F /T`, dir, u.name)
	}
	owner := u.name
	if g, err := user.LookupGroupId(u.gid); err == nil {
		owner += ":" + g.Name
	}
	return fmt.Sprintf("sudo chown -R %s %s", owner, dir)
}

func mkdirFix(u procUser, dataDir string) string {
	dir, _ := filepath.Abs(dataDir)
	if runtime.GOOS == "windows" {
		return fmt.Sprintf(`mkdir "%s", then icacls "%s" /grant "%s":(OI)(CI)F`, dir, dir, u.name)
	}
	return fmt.Sprintf("sudo install -d -o %s -m 0750 %s", u.name, dir)
}
