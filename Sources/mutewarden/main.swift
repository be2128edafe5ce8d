print("mutewarden")
