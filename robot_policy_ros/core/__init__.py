"""Pure control pieces shared by the nodes. Nothing here imports rclpy."""
