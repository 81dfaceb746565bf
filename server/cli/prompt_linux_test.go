package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what is written to the master is typed on the
// terminal; what the terminal echoes can be read back from the master.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	// Non-blocking, so that os.NewFile hands it to the poller and read deadlines work.
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	t.Cleanup(func() { _ = master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tty.Close() })
	return master, tty
}

// lockedBuffer is written by the command while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// On a terminal the password is asked twice and never echoed.
func TestUsersAddPromptsWithoutEcho(t *testing.T) {
	master, tty := openPTY(t)
	file := filepath.Join(inTempDir(t), "users.json")
	const pw = "typed-secret-pw"

	run := func(typed string) (int, string) {
		var out, errOut lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- Main(t.Context(), []string{"users", "add", "-file", file, "-cost", "10", "tina"},
				IO{Getenv: func(string) string { return "" }, Stdin: tty, Stdout: &out, Stderr: &errOut}, nil)
		}()
		// Type each line once the prompt for it is out (the terminal drops nothing
		// typed early, but echo is switched off only when the prompt is read).
		for i, line := range strings.SplitAfter(typed, "\n") {
			if line == "" {
				continue
			}
			prompts := []string{"Password for tina: ", "Again: "}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(errOut.String(), prompts[min(i, 1)]) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // ReadPassword turns echo off after the prompt is written
			if _, err := master.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		return <-done, errOut.String()
	}

	if code, stderr := run(pw + "\n" + "something-else\n"); code != ExitError || !strings.Contains(stderr, "passwords differ") {
		t.Fatalf("mismatch: %d %q", code, stderr)
	}
	if code, stderr := run(pw + "\n" + pw + "\n"); code != 0 {
		t.Fatalf("%d %q", code, stderr)
	}
	f, err := readUsersFile(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(f.records[0].PasswordBcrypt), []byte(pw)); err != nil {
		t.Fatal("the typed password is not the one hashed")
	}
	// What the terminal showed: never the password.
	if err := master.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	echoed := make([]byte, 4096)
	n, _ := master.Read(echoed)
	if bytes.Contains(echoed[:n], []byte(pw)) {
		t.Fatalf("the password was echoed: %q", echoed[:n])
	}
}
