package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// answer is one response the client read.
type answer struct {
	status int
	body   string
}

// exchange opens a TCP connection to addr, sends each of writes in its own
// write, and reads n responses; then it reports whether the server closed
// the connection (EOF or reset) or left it open, checked by a follow-up
// request whose answer is returned as the last answer. Every read has a
// deadline, so a server that neither answers nor closes fails the case.
func exchange(addr string, writes []string, n int, followUp string) (answers []answer, closed bool, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	for _, w := range writes {
		if _, err := io.WriteString(conn, w); err != nil && !isReset(err) {
			return nil, false, fmt.Errorf("write: %w", err)
		}
	}
	br := bufio.NewReader(conn)
	for len(answers) < n {
		a, err := readAnswer(br)
		if err != nil {
			return answers, false, fmt.Errorf("response %d: %w", len(answers)+1, err)
		}
		answers = append(answers, a)
	}
	// A closed connection reads EOF (or a reset, when the gateway closed
	// it with unread bytes of the client in its buffer). Otherwise the
	// follow-up request must be answered on it.
	if _, err := io.WriteString(conn, followUp); err != nil {
		if isReset(err) {
			return answers, true, nil
		}
		return answers, false, fmt.Errorf("follow-up write: %w", err)
	}
	a, err := readAnswer(br)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
		return answers, true, nil
	case err != nil:
		return answers, false, fmt.Errorf("after the answers: %w", err)
	}
	return append(answers, a), false, nil
}

func readAnswer(br *bufio.Reader) (answer, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, body: string(b)}, nil
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// statuses lists the status codes of answers.
func statuses(as []answer) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprint(a.status)
	}
	return "[" + strings.Join(s, " ") + "]"
}
