package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Healthz answers 200 while the process is up.
func Healthz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}

// Readyz answers 200 when ready() reports nil, 503 with the reason otherwise.
func Readyz(ready func() error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := ready(); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "message": err.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
}
