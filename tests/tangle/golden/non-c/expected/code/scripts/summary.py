def main():
    print("summary")
